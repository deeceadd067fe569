// One floating tooltip for the whole page, placed next to the pointer and kept
// inside the window. Content is { title, lines, image }, as lessons/explain.js
// builds it; an image is drawn on the diverging scale of its largest |value|.

import { fillDiverging } from "./matrixLayout.js";
import { maxFiniteMagnitude } from "../lessons/updateHistory.js";

const OFFSET_PX = 14;
const IMAGE_CSS_WIDTH_PX = 96;

export class Tooltip {
  constructor(parent = document.body) {
    this.element = document.createElement("div");
    this.element.className = "tooltip";
    this.element.setAttribute("role", "tooltip");
    this.element.hidden = true;
    parent.append(this.element);
    this.key = null;
  }

  /** Shows `content` near (clientX, clientY); `key` names what it describes, for tests and to skip rebuilding. */
  show(content, clientX, clientY, key) {
    this.key = key;
    this.element.dataset.key = key;
    const title = document.createElement("strong");
    title.textContent = content.title;
    const nodes = [title];
    for (const line of content.lines) {
      const paragraph = document.createElement("div");
      paragraph.textContent = line;
      nodes.push(paragraph);
    }
    if (content.image) nodes.push(this.drawImage(content.image));
    this.element.replaceChildren(...nodes);
    this.element.hidden = false;
    this.place(clientX, clientY);
  }

  place(clientX, clientY) {
    const box = this.element.getBoundingClientRect();
    let left = clientX + OFFSET_PX;
    let top = clientY + OFFSET_PX;
    if (left + box.width > window.innerWidth - 4) left = Math.max(4, clientX - OFFSET_PX - box.width);
    if (top + box.height > window.innerHeight - 4) top = Math.max(4, clientY - OFFSET_PX - box.height);
    this.element.style.left = `${Math.round(left)}px`;
    this.element.style.top = `${Math.round(top)}px`;
  }

  hide() {
    if (this.element.hidden) return;
    this.element.hidden = true;
    this.key = null;
    delete this.element.dataset.key;
  }

  drawImage({ values, height, width, caption }) {
    const figure = document.createElement("figure");
    figure.className = "tooltip-image";
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    canvas.style.width = `${IMAGE_CSS_WIDTH_PX}px`;
    canvas.style.height = `${Math.round((IMAGE_CSS_WIDTH_PX * height) / width)}px`;
    const context = canvas.getContext("2d");
    const image = context.createImageData(width, height);
    const bound = maxFiniteMagnitude(values);
    fillDiverging(image, values, bound);
    context.putImageData(image, 0, 0);
    const text = document.createElement("figcaption");
    text.textContent = `${caption}; orange < 0 < blue, scale ±${bound.toPrecision(2)}`;
    figure.append(canvas, text);
    return figure;
  }
}
