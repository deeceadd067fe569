// Classroom mode, for a projector: hides the settings sidebar, enlarges the
// views and keeps only Start, Pause and Step, as copies in the top bar. Each
// copy clicks the form's own button and mirrors its label and disabled state,
// so the run status rules stay in one place (controls.js).

const MIRRORED_ACTIONS = ["start", "pause", "step"];

export class ClassroomMode {
  /** `toggle` switches the mode, `bar` contains one button per mirrored action, and `onChange(enabled)` runs after every switch. */
  constructor(form, toggle, bar, { onChange = () => {} } = {}) {
    this.toggle = toggle;
    this.onChange = onChange;
    this.enabled = false;

    for (const action of MIRRORED_ACTIONS) {
      const original = form.querySelector(`button[data-action="${action}"]`);
      const copy = bar.querySelector(`button[data-classroom-action="${action}"]`);
      const mirror = () => {
        copy.disabled = original.disabled;
        copy.textContent = original.textContent;
      };
      new MutationObserver(mirror).observe(original, { attributes: true, attributeFilter: ["disabled"], childList: true });
      mirror();
      copy.addEventListener("click", () => original.click(), { passive: true });
    }
    toggle.addEventListener("click", () => this.set(!this.enabled), { passive: true });
  }

  set(enabled) {
    this.enabled = enabled;
    document.body.classList.toggle("classroom", enabled);
    this.toggle.setAttribute("aria-pressed", String(enabled));
    this.toggle.textContent = enabled ? "Exit classroom mode" : "Classroom mode";
    this.onChange(enabled);
  }
}
