// The slow-motion bar and what it draws over the other views. The bar has the
// controls (on/off, phase duration, pause), the phases with the current one
// marked, and the caption. During the forward, loss and backward phases a band
// marks the network view's layers at work. In the update phase the heatmap
// cells whose weights changed in the step flash, and the other cells are
// darkened. It reads the player (slowmotion/player.js) and changes it only
// through the controls.
//
// Attributes for tests and scripts: the caption's `data-phase` and
// `data-step`; each overlay's `data-step`, and the flash overlay's
// `data-changed` (drawn cells that flash). The overlays keep their pixels
// after the update phase, until the next one.

import { describePhase, PHASE_TITLES, PHASES } from "../slowmotion/captions.js";
import { clampPhaseSeconds } from "../slowmotion/player.js";
import { TERMINAL_STATUSES } from "../state.js";

const FLASH_RGBA = [255, 196, 0, 255];
const DIM_RGBA = [24, 28, 34, 190];
const BAND_PADDING_PX = 16; // the band reaches this far beyond the columns it spans
const LOSS_BAND_HALF_WIDTH_PX = 26;

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function setData(element, key, value) {
  if (element.dataset[key] !== value) element.dataset[key] = value;
}

function stepRangeText(firstStep, lastStep) {
  return firstStep === lastStep ? `Step ${firstStep}` : `Steps ${firstStep}–${lastStep}`;
}

/**
 * Returns, per drawn cell of `layout` (row-major, drawnRows × drawnColumns),
 * 1 when a weight of its block has a nonzero delta, else 0. `changes` is
 * nonzero where a weight's delta is, as a played frame's weightChanges.
 */
export function changedCells(changes, rows, columns, layout) {
  const { rowBlock, columnBlock, drawnRows, drawnColumns } = layout;
  const changed = new Uint8Array(drawnRows * drawnColumns);
  for (let i = 0; i < rows; i++) {
    const drawnRowStart = Math.floor(i / rowBlock) * drawnColumns;
    for (let j = 0; j < columns; j++) {
      if (changes[i * columns + j] !== 0) changed[drawnRowStart + Math.floor(j / columnBlock)] = 1;
    }
  }
  return changed;
}

export class SlowMotionView {
  /**
   * `root` is the bar (index.html, #slowmo). `network` and `heatmaps` are
   * the views it draws over, `networkContainer` the network view's element.
   * `onSettingsChange()` runs after the user changes a setting, for the URL.
   */
  constructor(root, player, { store, network, heatmaps, networkContainer, onSettingsChange = () => {} }) {
    this.root = root;
    this.player = player;
    this.store = store;
    this.network = network;
    this.heatmaps = heatmaps;
    this.onSettingsChange = onSettingsChange;
    const find = (id) => root.querySelector(`#${id}`);
    this.elements = {
      toggle: find("slowmo-toggle"),
      seconds: find("slowmo-seconds"),
      secondsValue: find("slowmo-seconds-value"),
      pause: find("slowmo-pause"),
      caption: find("slowmo-caption"),
      title: find("slowmo-title"),
      text: find("slowmo-text"),
      phases: [...root.querySelectorAll(".slowmo-phases [data-phase]")],
    };
    this.band = document.createElement("div");
    this.band.className = "phase-band";
    this.band.hidden = true;
    networkContainer.append(this.band);
    this.flashFrame = null; // the frame whose changed cells the overlays show
    this.runStatus = null;
    this.listen();
    store.subscribe(() => {
      // the waiting caption names what the run's status allows
      const status = store.run?.status ?? null;
      if (status === this.runStatus) return;
      this.runStatus = status;
      this.render();
    });
    this.render();
  }

  listen() {
    const { toggle, seconds, pause } = this.elements;
    toggle.addEventListener("click", () => {
      this.player.setEnabled(!this.player.enabled);
      this.onSettingsChange();
    }, { passive: true });
    seconds.addEventListener("input", () => {
      this.player.setPhaseSeconds(Number(seconds.value));
      this.onSettingsChange();
    }, { passive: true });
    pause.addEventListener("click", () => this.player.setPaused(!this.player.paused), { passive: true });
  }

  /** Turns slow motion on with `seconds` per phase, as a shared link requests. */
  enable(seconds) {
    this.player.setPhaseSeconds(clampPhaseSeconds(seconds));
    this.player.setEnabled(true);
  }

  /** Redraws the bar and the overlays from the player; the network view redraws on its own dirty flag. */
  render() {
    const { player, elements } = this;
    const current = player.enabled ? player.current : null;
    let state = "playing";
    if (!player.enabled) state = "off";
    else if (player.paused) state = "paused";
    else if (current === null) state = "waiting";
    setData(this.root, "state", state);
    setData(document.body, "slowMotion", player.enabled ? "on" : "off");
    document.body.style.setProperty("--phase-ms", `${Math.round(player.phaseSeconds * 1000)}ms`);

    elements.toggle.setAttribute("aria-pressed", String(player.enabled));
    setText(elements.toggle, player.enabled ? "Slow motion: on" : "Slow motion: off");
    if (Number(elements.seconds.value) !== player.phaseSeconds) elements.seconds.value = String(player.phaseSeconds);
    setText(elements.secondsValue, `${player.phaseSeconds.toFixed(1)} s`);
    elements.pause.disabled = !player.enabled;
    setText(elements.pause, player.paused ? "Continue" : "Pause");
    for (const item of elements.phases) {
      const active = current !== null && item.dataset.phase === current.phase;
      if (item.classList.contains("active") !== active) item.classList.toggle("active", active);
    }

    this.renderCaption(current);
    this.renderBand(current);
    this.renderFlash(current);
  }

  renderCaption(current) {
    const { caption, title, text } = this.elements;
    const store = this.store;
    if (current === null) {
      setData(caption, "phase", "");
      setData(caption, "step", "");
      setText(title, this.player.enabled ? "Slow motion." : "");
      setText(text, this.waitingText());
      return;
    }
    const index = PHASES.indexOf(current.phase);
    setData(caption, "phase", current.phase);
    setData(caption, "step", String(current.lastFrame.step));
    setText(title, `Step ${current.lastFrame.step}, ${index + 1}/${PHASES.length} ${PHASE_TITLES[current.phase]}:`);
    setText(text, describePhase(current.phase, store.run.config, store.layerSizes, current.lastFrame, current));
  }

  waitingText() {
    const player = this.player;
    if (!player.enabled) {
      return "Slow motion plays each training step as five phases, each with a caption. The run waits for "
        + "every played step, so it trains exactly one step per played step.";
    }
    const skipped = player.skipped === null
      ? ""
      : `${stepRangeText(player.skipped.firstStep, player.skipped.lastStep)} arrived merged into one frame, `
        + "trained before slow motion took over, and were applied without playing. ";
    const status = this.store.run?.status ?? null;
    let next = "Waiting for the trainer's next step.";
    if (status === null) next = "Create a run, then press Start or Step.";
    else if (TERMINAL_STATUSES.has(status)) next = `The run has ${status}; create a new run to play its steps.`;
    else if (status !== "running") next = "Waiting for a step: press Start to train, or Step for one mini-batch.";
    if (player.paused) next = `Paused: the run waits too. ${next}`;
    return skipped + next;
  }

  /** Shows the band over the layers of the forward, loss and backward phases. */
  renderBand(current) {
    const centres = this.network.columnCentres();
    const phase = current?.phase;
    const shown = centres !== null && (phase === "forward" || phase === "loss" || phase === "backward");
    this.band.hidden = !shown;
    if (!shown) return;
    let left;
    let right;
    if (phase === "loss") {
      const output = centres[centres.length - 1];
      left = output - LOSS_BAND_HALF_WIDTH_PX;
      right = output + LOSS_BAND_HALF_WIDTH_PX;
    } else {
      left = centres[current.layer] - BAND_PADDING_PX;
      right = centres[current.layer + 1] + BAND_PADDING_PX;
    }
    this.band.style.left = `${left.toFixed(1)}px`;
    this.band.style.width = `${(right - left).toFixed(1)}px`;
    setData(this.band, "phase", phase);
    setText(this.band, { forward: "forward →", loss: "loss", backward: "← backward" }[phase]);
  }

  /** Draws the overlays of the update phase once per step, and shows them only during it. */
  renderFlash(current) {
    const updating = current !== null && current.phase === "update";
    if (updating && this.flashFrame !== current.frame) {
      this.flashFrame = current.frame;
      this.placeFlash();
    }
    for (const { figure } of this.heatmaps.maps()) setData(figure, "flash", updating ? "on" : "off");
  }

  /** Sizes the overlays to the maps and draws the flashed frame's cells; call after every heatmap render. */
  placeFlash() {
    const frame = this.flashFrame;
    if (frame === null) return;
    for (const map of this.heatmaps.maps()) {
      const changes = frame.weightChanges[map.layer];
      // a map of another run's network, built after the flashed frame, gets no overlay
      if (changes === null || map.layout === null || changes.length !== map.rows * map.columns) continue;
      const [dim, flash] = this.overlaysOf(map.figure);
      const changed = changedCells(changes, map.rows, map.columns, map.layout);
      let changedCount = 0;
      for (const [canvas, colourOf] of [[dim, (on) => (on ? null : DIM_RGBA)], [flash, (on) => (on ? FLASH_RGBA : null)]]) {
        canvas.width = map.layout.drawnColumns;
        canvas.height = map.layout.drawnRows;
        canvas.style.left = `${map.canvas.offsetLeft + map.canvas.clientLeft}px`;
        canvas.style.top = `${map.canvas.offsetTop + map.canvas.clientTop}px`;
        canvas.style.width = `${map.canvas.clientWidth}px`;
        canvas.style.height = `${map.canvas.clientHeight}px`;
        const context = canvas.getContext("2d");
        const image = context.createImageData(canvas.width, canvas.height);
        changedCount = 0;
        changed.forEach((on, index) => {
          changedCount += on;
          const colour = colourOf(on === 1);
          if (colour !== null) image.data.set(colour, 4 * index);
        });
        context.putImageData(image, 0, 0);
        canvas.dataset.step = String(frame.firstStep);
      }
      flash.dataset.changed = String(changedCount);
    }
  }

  /** Returns the figure's [dim, flash] overlay canvases, made on first use. */
  overlaysOf(figure) {
    let overlays = [...figure.querySelectorAll(".flash-overlay")];
    if (overlays.length === 0) {
      overlays = ["flash-dim", "flash-cells"].map((name) => {
        const canvas = document.createElement("canvas");
        canvas.className = `flash-overlay ${name}`;
        canvas.setAttribute("aria-hidden", "true");
        figure.append(canvas);
        return canvas;
      });
    }
    return overlays;
  }
}
