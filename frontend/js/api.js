// REST client for the dropviz API. Every failed request raises ApiError,
// whose message is the server's `detail` turned into plain sentences.

/** Error for a request that failed, with the HTTP status (0 when no response) and the raw `detail`. */
export class ApiError extends Error {
  constructor(message, status, detail = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
  }
}

/** Formats a pydantic error location such as ["body", "hidden_sizes", 0] as "hidden_sizes[0]". */
export function formatLocation(location) {
  const parts = location[0] === "body" ? location.slice(1) : location;
  let text = "";
  for (const part of parts) {
    if (typeof part === "number") text += `[${part}]`;
    else text += text === "" ? `${part}` : `.${part}`;
  }
  return text;
}

/**
 * Turns a FastAPI `detail` (a string, or a list of validation errors with
 * `loc` and `msg`) into one line per problem. `nameField(location)` may
 * return a readable field name for a location, or null to use the raw one.
 */
export function describeDetail(detail, nameField = () => null) {
  if (typeof detail === "string") return [detail];
  if (!Array.isArray(detail)) return [JSON.stringify(detail)];
  return detail.map((item) => {
    const location = Array.isArray(item.loc) ? item.loc : [];
    const field = nameField(location) ?? formatLocation(location);
    return field === "" ? `${item.msg}` : `${field}: ${item.msg}`;
  });
}

/**
 * Sends a request and returns the Response when its status is 2xx; raises
 * ApiError otherwise. `body` is sent as JSON unless `contentType` is given,
 * then as it is.
 */
export async function sendRequest(method, path, body = undefined, contentType = null) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = contentType ?? "application/json";
    options.body = contentType === null ? JSON.stringify(body) : body;
  }

  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(`${method} ${path} failed: the server did not respond (${error.message}).`, 0);
  }
  if (response.ok) return response;

  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (payload !== null && payload.detail !== undefined) {
    throw new ApiError(describeDetail(payload.detail).join(" "), response.status, payload.detail);
  }
  throw new ApiError(`${method} ${path} failed with HTTP ${response.status}.`, response.status);
}

/** Sends a request and returns its JSON body, or null for 204 No Content or a body that is not JSON. */
async function request(method, path, body = undefined, contentType = null) {
  const response = await sendRequest(method, path, body, contentType);
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

export const getHealth = () => request("GET", "/api/health");
export const getDefaults = () => request("GET", "/api/defaults");
export const getDatasets = () => request("GET", "/api/datasets");
export const listRuns = () => request("GET", "/api/runs");
export const createRun = (config) => request("POST", "/api/runs", config);
export const getRun = (runId) => request("GET", `/api/runs/${encodeURIComponent(runId)}`);
export const getMetrics = (runId) => request("GET", `/api/runs/${encodeURIComponent(runId)}/metrics`);
export const updateRun = (runId, changes) =>
  request("PATCH", `/api/runs/${encodeURIComponent(runId)}`, changes);
export const deleteRun = (runId) => request("DELETE", `/api/runs/${encodeURIComponent(runId)}`);

/** Uploads a CSV file (a File or Blob) as a data set and returns its catalogue entry, whose `name` a run can use. */
export function uploadCsv(file, labelColumn, name) {
  const query = new URLSearchParams({ label_column: labelColumn, name });
  return request("POST", `/api/datasets/csv?${query}`, file, "text/csv");
}

/** Sends a control action ("start", "pause", "step" or "stop") and returns the updated Run. */
export function controlRun(runId, action) {
  return request("POST", `/api/runs/${encodeURIComponent(runId)}/${action}`);
}

/** Returns one recorded step: masks as [layer][row][unit] booleans, and with `weights` the weights right after it. */
export function getStep(runId, step, { weights = false } = {}) {
  const query = weights ? "?weights=true" : "";
  return request("GET", `/api/runs/${encodeURIComponent(runId)}/steps/${step}${query}`);
}

/** Returns up to `count` recorded steps from `first` on, with bit-packed masks (StepRangeOut). */
export function getStepRange(runId, first, count) {
  return request("GET", `/api/runs/${encodeURIComponent(runId)}/steps?first=${first}&count=${count}`);
}

/** Recreates a run from an archive of GET /api/runs/{id}/export and returns the new Run. */
export function importRun(archive) {
  return request("POST", "/api/runs/import", archive, "application/zip");
}

/** Address of the run's zip archive; the browser sends the token cookie with a download from it. */
export const exportUrl = (runId) => `/api/runs/${encodeURIComponent(runId)}/export`;

/** Address of the run's current weights as .npz. */
export const weightsUrl = (runId) => `/api/runs/${encodeURIComponent(runId)}/weights`;

/** Downloads the run's splits as `.npz` bytes (GET /api/runs/{id}/data). */
export async function getRunData(runId) {
  const response = await sendRequest("GET", `/api/runs/${encodeURIComponent(runId)}/data`);
  return response.arrayBuffer();
}

/**
 * Predicts with the run's current weights (POST /api/runs/{id}/predict):
 * weight scaling, MC averaging, single sub-networks and, on request, the
 * hidden units' activations, on a grid, on given points or on a split.
 */
export const predict = (runId, body) =>
  request("POST", `/api/runs/${encodeURIComponent(runId)}/predict`, body);
