// The "Upload a CSV" part of the run form: sends the chosen file as the raw
// body of POST /api/datasets/csv and reports the new data set's name.

import * as api from "./api.js";

export class CsvUpload {
  /** `onUploaded(dataset)` gets the catalogue entry of the new data set; the status waits for its promise. */
  constructor(root, { onUploaded }) {
    this.fileInput = root.querySelector("#csv-file");
    this.labelInput = root.querySelector("#csv-label-column");
    this.nameInput = root.querySelector("#csv-name");
    this.button = root.querySelector("#csv-upload-button");
    this.status = root.querySelector("#csv-status");
    this.onUploaded = onUploaded;
    this.button.addEventListener("click", () => this.upload(), { passive: true });
  }

  setStatus(text, failed = false) {
    this.status.textContent = text;
    this.status.classList.toggle("failed", failed);
  }

  async upload() {
    const file = this.fileInput.files[0];
    if (file === undefined) {
      this.setStatus("Choose a CSV file first.", true);
      return;
    }
    const labelColumn = this.labelInput.value.trim();
    if (labelColumn === "") {
      this.setStatus("Label column: enter the name of the column that holds the classes.", true);
      return;
    }
    const title = this.nameInput.value.trim() || file.name;

    this.button.disabled = true;
    this.setStatus(`Uploading ${file.name} (${file.size.toLocaleString("en-US")} bytes)…`);
    try {
      const dataset = await api.uploadCsv(file, labelColumn, title);
      await this.onUploaded(dataset);
      this.setStatus(`Uploaded as ${dataset.name}: ${dataset.n_features} features, ${dataset.n_classes} classes.`);
    } catch (error) {
      this.setStatus(`Uploading ${file.name} failed: ${error.message}`, true);
    } finally {
      this.button.disabled = false;
    }
  }
}
