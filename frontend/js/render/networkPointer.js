// Pointer input of the network view: one hit test per animation frame on
// pointer moves, reported to the view's callbacks, and clicks on links, which
// pin their weight. A link is found by its distance to the pointer; links of
// the latest sub-network win over faded ones within the tolerance.

import { isWeightKept } from "../protocol.js";

const LINK_HIT_TOLERANCE_PX = 4;
const CLICK_SLOP_PX = 3; // a click this close to the last hovered point pins what was hovered

export class NetworkPointer {
  /** `view` is the NetworkView; `callbacks` its onHover, onLeave and onPin. */
  constructor(view, callbacks) {
    this.view = view;
    this.callbacks = callbacks;
    this.hovered = null; // { target, x, y }: the last hit test of a pointer move
    this.listen();
  }

  listen() {
    let pending = null;
    const report = () => {
      const event = pending;
      pending = null;
      const target = this.hitTest(event);
      this.hovered = target === null ? null : { target, x: event?.clientX, y: event?.clientY };
      if (target === null) this.callbacks.onLeave();
      else this.callbacks.onHover(target, event);
    };
    this.view.container.addEventListener("pointermove", (event) => {
      // one hit test per animation frame, however fast the pointer moves
      if (pending === null) requestAnimationFrame(report);
      pending = event;
    }, { passive: true });
    this.view.container.addEventListener("pointerleave", () => {
      pending = null;
      this.hovered = null;
      this.callbacks.onLeave();
    }, { passive: true });
    this.view.container.addEventListener("click", (event) => {
      // A click reports whole pixels and a move fractions of one, so among
      // dense links they can hit different ones: pin the one the tooltip shows.
      const hovered = this.hovered;
      const near = hovered !== null && Math.hypot(event.clientX - hovered.x, event.clientY - hovered.y) <= CLICK_SLOP_PX;
      const target = near ? hovered.target : this.hitTest(event);
      if (target?.kind === "weight") this.callbacks.onPin(target);
    }, { passive: true });
  }

  /** Returns the unit, link or summary block under a pointer event, or null. */
  hitTest(event) {
    if (event === null || this.view.layerSizes === null) return null;
    const box = this.view.container.getBoundingClientRect();
    const x = event.clientX - box.left;
    const y = event.clientY - box.top;
    if (this.view.summaryShown) return this.view.summary.hitTest(x, y);
    if (this.view.positions === null) return null;

    const circle = event.target?.closest?.("circle[data-layer]");
    if (circle) return { kind: "unit", layer: Number(circle.dataset.layer), unit: Number(circle.dataset.unit) };
    return this.linkAt(x, y);
  }

  /**
   * Returns the link nearest to (x, y) within LINK_HIT_TOLERANCE_PX, preferring
   * links of the latest sub-network, as { kind: "weight", layer, source, destination }.
   */
  linkAt(x, y) {
    const { x: columns, y: rows } = this.view.positions;
    let layer = -1;
    for (let l = 0; l + 1 < columns.length; l++) if (x >= columns[l] && x <= columns[l + 1]) layer = l;
    if (layer < 0) return null;
    const dx = columns[layer + 1] - columns[layer];
    const t = (x - columns[layer]) / dx;
    const destinationIsOutput = layer + 1 === this.view.layerSizes.length - 1;
    let best = null;
    for (let i = 0; i < this.view.layerSizes[layer]; i++) {
      const sourceY = rows[layer][i];
      for (let j = 0; j < this.view.layerSizes[layer + 1]; j++) {
        const destinationY = rows[layer + 1][j];
        const dy = destinationY - sourceY;
        // perpendicular distance from the point to the line through both units
        const distance = (Math.abs(sourceY + t * dy - y) * dx) / Math.hypot(dx, dy);
        if (distance > LINK_HIT_TOLERANCE_PX) continue;
        const inSubnetwork = this.linkInSubnetwork(layer, i, j, destinationIsOutput);
        const score = distance - (inSubnetwork ? LINK_HIT_TOLERANCE_PX : 0);
        if (best === null || score < best.score) best = { score, layer, source: i, destination: j };
      }
    }
    return best === null ? null : { kind: "weight", layer: best.layer, source: best.source, destination: best.destination };
  }

  linkInSubnetwork(layer, source, destination, destinationIsOutput) {
    if (this.view.kept === null) return true;
    if (this.view.weightMasks !== null) return isWeightKept(this.view.weightMasks[layer], this.view.layerSizes[layer + 1], source, destination);
    return this.view.kept[layer][source] === 1 && (destinationIsOutput || this.view.kept[layer + 1][destination] === 1);
  }
}
