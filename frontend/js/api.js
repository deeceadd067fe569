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

async function request(method, path, body = undefined) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(`${method} ${path} failed: the server did not respond (${error.message}).`, 0);
  }

  if (response.status === 204) return null;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) {
    if (payload !== null && payload.detail !== undefined) {
      throw new ApiError(describeDetail(payload.detail).join(" "), response.status, payload.detail);
    }
    throw new ApiError(`${method} ${path} failed with HTTP ${response.status}.`, response.status);
  }
  return payload;
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

/** Sends a control action ("start", "pause", "step" or "stop") and returns the updated Run. */
export function controlRun(runId, action) {
  return request("POST", `/api/runs/${encodeURIComponent(runId)}/${action}`);
}
