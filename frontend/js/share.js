// Shareable page state in the URL fragment: every named field of the run
// form (seed and speed included) under its own name, `run=<id>` for the open
// run, `classroom=1` for classroom mode and `slowmo=<seconds per phase>` for
// slow motion. Opening such a link fills the
// form, so New run creates a run with the same config, and with the same
// seed that run draws the same masks. The fragment never reaches the server,
// and token.js removes `token=` from it before this module reads it.

const RUN_KEY = "run";
const CLASSROOM_KEY = "classroom";
const SLOW_MOTION_KEY = "slowmo";
const PAGE_KEYS = new Set([RUN_KEY, CLASSROOM_KEY, SLOW_MOTION_KEY, "token"]); // keys that name no form field

/**
 * Reads the fragment into { runId, classroom, slowMotion, fields }. `fields`
 * maps form field names to raw values. `slowMotion` is the seconds per phase,
 * or null when slow motion is off or its value is not a number.
 */
export function readFragment(hash = window.location.hash) {
  const parameters = new URLSearchParams(hash.replace(/^#/, ""));
  const fields = new Map();
  for (const [key, value] of parameters) {
    if (!PAGE_KEYS.has(key)) fields.set(key, value);
  }
  const slowMotion = parameters.has(SLOW_MOTION_KEY) ? Number(parameters.get(SLOW_MOTION_KEY)) : NaN;
  return {
    runId: parameters.get(RUN_KEY),
    classroom: parameters.get(CLASSROOM_KEY) === "1",
    slowMotion: Number.isFinite(slowMotion) ? slowMotion : null,
    fields,
  };
}

/**
 * Returns whether a link's `value` fits `field`: a number for a number field,
 * and a positive speed for the speed select. Empty fits both: none, or full
 * speed.
 */
function linkValueFits(field, value) {
  const isSpeed = field.name === "max_steps_per_second";
  if (value === "" || (field.type !== "number" && !isSpeed)) return true;
  const number = Number(value);
  if (value.trim() === "" || !Number.isFinite(number)) return false;
  return !isSpeed || number > 0;
}

export class ShareState {
  /**
   * `form` is the run form element; `getRunId()` returns the open run's id
   * or null; `getClassroom()` whether classroom mode is on; `getSlowMotion()`
   * the seconds per slow-motion phase, or null while slow motion is off.
   */
  constructor(form, { getRunId, getClassroom, getSlowMotion = () => null }) {
    this.form = form;
    this.getRunId = getRunId;
    this.getClassroom = getClassroom;
    this.getSlowMotion = getSlowMotion;
    const initial = readFragment();
    this.initialRunId = initial.runId;
    this.initialFields = initial.fields;
    this.initialClassroom = initial.classroom;
    this.initialSlowMotion = initial.slowMotion;
    const update = () => this.update();
    form.addEventListener("input", update, { passive: true });
    form.addEventListener("change", update, { passive: true });
  }

  /** Returns whether the page was opened with a run config in its fragment. */
  get hasConfig() {
    return this.initialFields.size > 0;
  }

  /**
   * Writes the config from the opening fragment into `runForm` (a RunForm),
   * after the defaults, so fields the link leaves out keep their defaults.
   * Returns the link's values that a field cannot take, as { field, value }
   * pairs; those fields keep their defaults.
   */
  applyToForm(runForm) {
    const rejected = [];
    if (!this.hasConfig) return rejected;
    const config = {};
    for (const [name, value] of this.initialFields) {
      const field = this.form.elements.namedItem(name);
      if (field === null || field instanceof RadioNodeList) continue;
      if (!linkValueFits(field, value)) {
        rejected.push({ field: name, value });
      } else if (field.type === "checkbox") {
        config[name] = value === "1";
      } else if (name === "max_steps_per_second") {
        config[name] = value === "" ? null : Number(value);
      } else {
        config[name] = value;
      }
    }
    runForm.setConfig(config);
    return rejected;
  }

  /** Returns the fragment parameters for the current form, run and mode. */
  parameters() {
    const parameters = new URLSearchParams();
    const runId = this.getRunId();
    if (runId !== null) parameters.set(RUN_KEY, runId);
    for (const field of this.form.elements) {
      if (!field.name || field.tagName === "BUTTON" || field.type === "file") continue;
      let value = field.value;
      if (field.type === "checkbox") value = field.checked ? "1" : "0";
      parameters.set(field.name, value);
    }
    if (this.getClassroom()) parameters.set(CLASSROOM_KEY, "1");
    const slowMotion = this.getSlowMotion();
    if (slowMotion !== null) parameters.set(SLOW_MOTION_KEY, String(slowMotion));
    return parameters;
  }

  /** Returns the full address that reproduces this page's state. */
  link() {
    const { origin, pathname, search } = window.location;
    return `${origin}${pathname}${search}#${this.parameters()}`;
  }

  /** Replaces the address bar's fragment with the current state, without a history entry. */
  update() {
    const url = `${window.location.pathname}${window.location.search}#${this.parameters()}`;
    if (url !== `${window.location.pathname}${window.location.search}${window.location.hash}`) {
      history.replaceState(null, "", url);
    }
  }

  /** Copies the link to the clipboard; resolves to a sentence for the page to show. */
  async copyLink() {
    this.update();
    const link = this.link();
    try {
      await navigator.clipboard.writeText(link);
      return "Link copied.";
    } catch (error) {
      // the clipboard needs a secure context and the user's permission
      console.warn(`dropviz: copying the link failed: ${error.message}`);
      return "Copying failed; copy the address bar instead, which holds the same link.";
    }
  }
}
