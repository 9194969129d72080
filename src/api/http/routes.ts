// Plain HTTP routes on the client port, as etcd serves them.
import { Hono } from "hono";
import { CLUSTER_VERSION, SERVER_VERSION } from "../../version.js";

export interface HealthSource {
  /** Empty when healthy; otherwise etcd's reason text (e.g. "ALARM NOSPACE"). */
  healthProblem(): string;
  /** Prometheus text for /metrics. */
  metrics?(): Promise<{ body: string; contentType: string }>;
}

export function httpRoutes(health: HealthSource): Hono {
  const app = new Hono();
  app.get("/version", (c) => c.json({ etcdserver: SERVER_VERSION, etcdcluster: CLUSTER_VERSION }));
  app.get("/health", (c) => {
    const reason = health.healthProblem();
    return c.json({ health: reason === "" ? "true" : "false", reason }, reason === "" ? 200 : 503);
  });
  const probe = (c: any) => {
    const reason = health.healthProblem();
    return reason === "" ? c.text("ok") : c.text(`[-]${reason} failed: ${reason}\n`, 503);
  };
  app.get("/metrics", async (c) => {
    if (!health.metrics) return c.text("404 page not found\n", 404);
    const m = await health.metrics();
    return c.body(m.body, 200, { "content-type": m.contentType });
  });
  app.get("/livez", probe);
  app.get("/readyz", probe);
  app.notFound((c) => c.text("404 page not found\n", 404));
  return app;
}
