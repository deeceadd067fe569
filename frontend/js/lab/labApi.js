// REST calls of the lab that frontend/js/api.js does not offer: evaluation
// jobs (whose 200 and 202 replies differ) and a check of which endpoints the
// server has. Failures raise api.js's ApiError, with the server's `detail` as
// sentences.

import { sendRequest } from "../api.js";

const OPENAPI_PATH = "/openapi.json";

function runPath(runId) {
  return `/api/runs/${encodeURIComponent(runId)}`;
}

async function requestJson(method, path, body = undefined) {
  const response = await sendRequest(method, path, body);
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

let openapiPaths = null;

/**
 * Returns whether the server's OpenAPI document lists `path`, written as in
 * that document, such as "/api/runs/{run_id}/predict". The document is read
 * once per page load; an unreadable document counts as "not offered".
 */
export async function serverOffers(path) {
  if (openapiPaths === null) {
    openapiPaths = sendRequest("GET", OPENAPI_PATH)
      .then((response) => response.json())
      .then((document) => new Set(Object.keys(document.paths ?? {})))
      .catch((error) => {
        console.warn(`dropviz lab: could not read ${OPENAPI_PATH}: ${error.message}`);
        return new Set();
      });
  }
  return (await openapiPaths).has(path);
}
