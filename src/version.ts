// The etcd version tsetcd speaks for: what /version, Status and --version report.
export const SERVER_VERSION = "3.5.17";
export const CLUSTER_VERSION = "3.5.0";
export const API_VERSION = "3.5";
