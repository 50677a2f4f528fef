export { handleDashboardRequest, dashboardRole, type DashboardDeps } from './dashboard-handler.js';
export { DashboardSource, type DashboardSourceOptions } from './dashboard-source.js';
export type {
  DashboardAdapterVersion,
  DashboardDecision,
  DashboardRole,
  DashboardRound,
  DashboardSnapshot,
  DashboardTask,
} from './dashboard-snapshot.js';
export { handleStaticRequest, contentTypeOf, type StaticMount } from './static-files.js';
