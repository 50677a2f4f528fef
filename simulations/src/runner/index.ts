export { runSimulation, type RunSimulationOptions, type SimulationResult } from './run-simulation.js';
export { reportRun, summaryTable } from './report-run.js';
export { participationFor, type RoundParticipation } from './participation.js';
export { taskFromScenario } from './sim-environment.js';
export { scenarioTask, toLocalDataset } from './scenario-data.js';
