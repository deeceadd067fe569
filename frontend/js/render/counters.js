// The counter strip and the connection badge. Text is written only when it changed.

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function setData(element, key, value) {
  if (element.dataset[key] !== value) element.dataset[key] = value;
}

function formatNumber(value, digits = 4) {
  return Number.isFinite(value) ? value.toFixed(digits) : "–";
}

function formatPercent(value) {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : "–";
}

export class CountersView {
  constructor(root, connectionBadge) {
    this.connectionBadge = connectionBadge;
    this.fields = {};
    for (const name of ["run", "status", "status-detail", "step", "epoch", "batch-loss", "batch-accuracy", "test-accuracy"]) {
      this.fields[name] = root.querySelector(`#counter-${name}`);
    }
  }

  render(store) {
    const connection = store.connection;
    const missing = store.runMissing;
    setData(this.connectionBadge, "state", missing ? "closed" : connection.state);
    let badge = connection.state === "idle" ? "not connected" : connection.message || connection.state;
    if (missing) badge = "run not found on the server";
    setText(this.connectionBadge, badge);

    const run = store.run;
    const { fields } = this;
    if (run === null) {
      for (const element of Object.values(fields)) setText(element, "–");
      setText(fields.status, "no run");
      setText(fields["status-detail"], "");
      setData(fields.status, "status", "");
      setData(fields.step, "value", "0");
      return;
    }

    setText(fields.run, String(run.id));
    fields.run.title = String(run.id);
    // the detail line takes what does not fit next to the status word, such as the diverged step
    let detail = "";
    if (missing) {
      detail = "the server has no run with this id (deleted, or another state folder); create a new run";
    } else if (run.status === "diverged" && run.diverged_step !== null && run.diverged_step !== undefined) {
      detail = `at step ${run.diverged_step.toLocaleString("en-US")}`;
    } else if (run.status === "interrupted") {
      detail = "the server stopped during training; Resume continues";
    }
    setText(fields.status, missing ? "not found" : run.status);
    setText(fields["status-detail"], detail);
    fields["status-detail"].title = detail;
    setData(fields.status, "status", missing ? "missing" : run.status);

    // steps completed, so the counter reads 0 before the first step
    const steps = store.stepsCompleted;
    setData(fields.step, "value", String(steps));
    setText(fields.step, run.total_steps ? `${steps.toLocaleString("en-US")} / ${run.total_steps.toLocaleString("en-US")}` : String(steps));

    const epoch = store.lastFrame?.epoch ?? run.epoch;
    const epochCount = run.config?.epochs;
    setText(fields.epoch, Number.isInteger(epoch) ? `${Math.min(epoch + 1, epochCount ?? Infinity)} of ${epochCount ?? "?"}` : "–");

    const lastFrame = store.lastFrame;
    const batchLoss = lastFrame?.loss ?? run.latest?.batch_loss;
    const batchAccuracy = lastFrame?.batchAccuracy ?? run.latest?.batch_accuracy;
    setText(fields["batch-loss"], formatNumber(batchLoss ?? NaN));
    setText(fields["batch-accuracy"], formatPercent(batchAccuracy ?? NaN));

    const testAccuracy = store.latestEpochRecord?.test_accuracy ?? run.latest?.test_accuracy;
    setText(fields["test-accuracy"], formatPercent(testAccuracy ?? NaN));
  }
}
