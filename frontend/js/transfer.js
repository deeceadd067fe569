// Export and import of whole runs: download links for the open run's archive
// and current weights, and a file picker that sends an archive to
// POST /api/runs/import and opens the run it creates. Every request goes
// through api.js, and the browser adds the token cookie to the downloads.

import * as api from "./api.js";

export class RunTransfer {
  /**
   * `elements` has the links `archive` and `weights`, the file input `file`
   * and the `status` line; `onImported(run)` opens the imported run.
   */
  constructor(elements, { onImported }) {
    this.elements = elements;
    this.onImported = onImported;
    this.runId = undefined;
    elements.file.addEventListener("change", () => this.importSelected(), { passive: true });
    this.setRun(null);
  }

  /** Points the download links at run `runId`, or disables them for null. */
  setRun(runId) {
    if (runId === this.runId) return;
    this.runId = runId;
    for (const [link, url, name] of [
      [this.elements.archive, runId === null ? null : api.exportUrl(runId), `dropviz-${runId}.zip`],
      [this.elements.weights, runId === null ? null : api.weightsUrl(runId), `dropviz-${runId}-weights.npz`],
    ]) {
      if (url === null) {
        link.removeAttribute("href");
        link.setAttribute("aria-disabled", "true");
      } else {
        link.href = url;
        link.download = name;
        link.removeAttribute("aria-disabled");
      }
    }
  }

  async importSelected() {
    const { file, status } = this.elements;
    const archive = file.files[0];
    if (archive === undefined) return;
    status.dataset.error = "false";
    status.textContent = `Importing ${archive.name}; the server re-runs its last steps first…`;
    try {
      const run = await api.importRun(archive);
      status.textContent = `Imported ${archive.name} as run ${run.id}.`;
      this.onImported(run);
    } catch (error) {
      status.dataset.error = "true";
      status.textContent = `Importing ${archive.name} failed: ${error.message}`;
    } finally {
      file.value = ""; // picking the same file again fires change again
    }
  }
}
