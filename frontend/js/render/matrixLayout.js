// Sizing and filling of matrix heatmaps (weight layers, rows = source units,
// columns = destination units) inside a bounded box. Cells are at least
// MIN_CELL_PX on screen: a matrix with more rows or columns than that allows
// is drawn in blocks, each drawn cell standing for rowBlock × columnBlock
// weights, so no weight is lost to scaling. A long thin matrix such as 2×128
// is stretched to an aspect ratio of at most MAX_ASPECT, so it stays readable.

import { NON_FINITE_INDEX, SHADE_RGBA, shadeIndex } from "./palette.js";

export const MIN_CELL_PX = 1; // CSS px; a drawn cell smaller than one pixel would hide weights
export const MAX_ASPECT = 4; // maximum width ÷ height, and height ÷ width, of a drawn map
export const MIN_SIDE_PX = 40;

/**
 * Returns the drawn size of a rows × columns matrix that fits in maxWidth ×
 * maxHeight CSS px: { width, height, rowBlock, columnBlock, drawnRows, drawnColumns }.
 */
export function layoutMatrix(rows, columns, maxWidth, maxHeight) {
  const cell = Math.min(maxWidth / columns, maxHeight / rows);
  let width = columns * cell;
  let height = rows * cell;
  if (width > MAX_ASPECT * height) height = Math.min(maxHeight, width / MAX_ASPECT);
  if (height > MAX_ASPECT * width) width = Math.min(maxWidth, height / MAX_ASPECT);
  width = Math.max(width, Math.min(MIN_SIDE_PX, maxWidth));
  height = Math.max(height, Math.min(MIN_SIDE_PX, maxHeight));
  width = Math.floor(width);
  height = Math.floor(height);

  const rowBlock = Math.max(1, Math.ceil((rows * MIN_CELL_PX) / height));
  const columnBlock = Math.max(1, Math.ceil((columns * MIN_CELL_PX) / width));
  return {
    width,
    height,
    rowBlock,
    columnBlock,
    drawnRows: Math.ceil(rows / rowBlock),
    drawnColumns: Math.ceil(columns / columnBlock),
  };
}

/** Describes a layout's blocks for a caption: "" when every weight has its own cell. */
export function describeBlocks({ rowBlock, columnBlock }, reducer = "largest |value|") {
  if (rowBlock === 1 && columnBlock === 1) return "";
  return `Each cell shows the ${reducer} of a block of ${rowBlock}×${columnBlock} weights.`;
}

/**
 * Reduces a (rows, columns) row-major matrix to the layout's drawn cells and
 * measures it in the same pass. Each drawn cell keeps the value of largest
 * |value| in its block, with its sign, and a non-finite value wins over any
 * finite one, so NaN is never hidden. Returns { drawn, maxMagnitude,
 * zeroCount }. `drawn` is (drawnRows, drawnColumns), or `values` itself when
 * every weight has its own cell. `maxMagnitude` is the largest finite |value|,
 * and `zeroCount` counts exact zeros.
 */
export function reduceAndMeasure(values, rows, columns, layout) {
  const { rowBlock, columnBlock, drawnRows, drawnColumns } = layout;
  const blocked = rowBlock > 1 || columnBlock > 1;
  const drawn = blocked ? new Float32Array(drawnRows * drawnColumns) : values;
  const drawnColumnOf = new Int32Array(columns); // precomputed: a division per weight is slow here
  for (let j = 0; j < columns; j++) drawnColumnOf[j] = Math.floor(j / columnBlock);
  let maxMagnitude = 0;
  let zeroCount = 0;
  for (let i = 0; i < rows; i++) {
    const drawnRowStart = Math.floor(i / rowBlock) * drawnColumns;
    const rowStart = i * columns;
    for (let j = 0; j < columns; j++) {
      const value = values[rowStart + j];
      const magnitude = Math.abs(value);
      if (magnitude === 0) {
        zeroCount++; // a zero never replaces a drawn value
        continue;
      }
      if (magnitude > maxMagnitude && magnitude !== Infinity) maxMagnitude = magnitude;
      if (!blocked) continue;
      const target = drawnRowStart + drawnColumnOf[j];
      const current = drawn[target];
      // NaN fails every comparison, so it replaces a finite value and is never replaced
      if (!(magnitude <= Math.abs(current)) && Number.isFinite(current)) drawn[target] = value;
    }
  }
  return { drawn, maxMagnitude, zeroCount };
}

/**
 * Fills `image` (drawnColumns × drawnRows) from `values` on the diverging
 * scale [−bound, bound], after subtracting `centre`. Returns the number of
 * non-finite cells.
 */
export function fillDiverging(image, values, bound, centre = 0) {
  const pixels = image.data;
  let nonFinite = 0;
  for (let index = 0, offset = 0; index < values.length; index++, offset += 4) {
    const shade = shadeIndex(values[index] - centre, bound);
    if (shade === NON_FINITE_INDEX) nonFinite++;
    const colour = 4 * shade;
    pixels[offset] = SHADE_RGBA[colour];
    pixels[offset + 1] = SHADE_RGBA[colour + 1];
    pixels[offset + 2] = SHADE_RGBA[colour + 2];
    pixels[offset + 3] = 255;
  }
  return nonFinite;
}

/**
 * Maps a pointer position over a drawn map to the weight under it: { source,
 * destination }. The map fills the element's content box, inside its border.
 */
export function cellAt(event, element, rows, columns) {
  const box = element.getBoundingClientRect();
  const x = (event.clientX - box.left - element.clientLeft) / element.clientWidth;
  const y = (event.clientY - box.top - element.clientTop) / element.clientHeight;
  if (!(x >= 0 && x < 1 && y >= 0 && y < 1)) return null;
  return { source: Math.floor(y * rows), destination: Math.floor(x * columns) };
}
