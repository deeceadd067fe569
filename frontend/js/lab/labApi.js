// REST calls of the lab that frontend/js/api.js does not offer: evaluation
// jobs (whose 200 and 202 replies differ), the run's data as `.npz`, the
// prediction endpoint and a check of which endpoints the server has.
// Failures raise api.js's ApiError, with the server's `detail` as sentences.

import { ApiError, describeDetail } from "../api.js";

const OPENAPI_PATH = "/openapi.json";

function runPath(runId) {
  return `/api/runs/${encodeURIComponent(runId)}`;
}

async function fetchOrRaise(method, path, body) {
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

async function requestJson(method, path, body = undefined) {
  const response = await fetchOrRaise(method, path, body);
  return { status: response.status, payload: await response.json() };
}

/**
 * Starts an evaluation. Returns { status, job }: status 200 when the job
 * finished within `request.wait_seconds`, 202 when it still runs.
 */
export async function startEvaluation(runId, request) {
  const { status, payload } = await requestJson("POST", `${runPath(runId)}/evaluate`, request);
  return { status, job: payload };
}

export async function readEvaluation(runId, jobId) {
  const path = `${runPath(runId)}/evaluations/${encodeURIComponent(jobId)}`;
  return (await requestJson("GET", path)).payload;
}

/** Asks the server to cancel a job and returns the job as the server then reports it. */
export async function cancelEvaluation(runId, jobId) {
  const path = `${runPath(runId)}/evaluations/${encodeURIComponent(jobId)}`;
  return (await requestJson("DELETE", path)).payload;
}

/** Downloads the run's splits as `.npz` bytes. */
export async function fetchRunData(runId) {
  const response = await fetchOrRaise("GET", `${runPath(runId)}/data`);
  return response.arrayBuffer();
}

let openapiPaths = null;

/**
 * Returns whether the server's OpenAPI document lists `path`, written as in
 * that document, such as "/api/runs/{run_id}/predict". The document is read
 * once per page load; an unreadable document counts as "not offered".
 */
export async function serverOffers(path) {
  if (openapiPaths === null) {
    openapiPaths = fetchOrRaise("GET", OPENAPI_PATH)
      .then((response) => response.json())
      .then((document) => new Set(Object.keys(document.paths ?? {})))
      .catch((error) => {
        console.warn(`dropviz lab: could not read ${OPENAPI_PATH}: ${error.message}`);
        return new Set();
      });
  }
  return (await openapiPaths).has(path);
}

/** Calls the prediction endpoint that the lab's decision maps and gallery need (see predictions.js). */
export async function predict(runId, request) {
  return (await requestJson("POST", `${runPath(runId)}/predict`, request)).payload;
}
