// Diverging colour scale shared by the network view and the heatmaps:
// orange for negative values, blue for positive, neutral grey for exactly zero,
// and purple, outside the scale, for NaN and ±Infinity.

/** Number of shades; odd, so that index (SHADE_COUNT - 1) / 2 is zero alone. */
export const SHADE_COUNT = 255;
const ZERO_INDEX = (SHADE_COUNT - 1) / 2;

// Colour stops as [position in [-1, 1], r, g, b], interpolated linearly in sRGB.
const STOPS = [
  [-1.0, 166, 54, 3],
  [-0.5, 236, 139, 52],
  [0.0, 229, 229, 229],
  [0.5, 94, 156, 214],
  [1.0, 22, 76, 148],
];

function interpolateStops(position) {
  for (let s = 1; s < STOPS.length; s++) {
    const [right, ...rightColour] = STOPS[s];
    if (position <= right || s === STOPS.length - 1) {
      const [left, ...leftColour] = STOPS[s - 1];
      const t = (position - left) / (right - left);
      return leftColour.map((channel, c) => Math.round(channel + t * (rightColour[c] - channel)));
    }
  }
  throw new Error(`Position ${position} outside [-1, 1].`);
}

/** Colour of a weight or delta that is NaN or infinite; no shade of the scale is close to it. */
export const NON_FINITE_RGB = [150, 40, 200];
export const NON_FINITE_CSS = `rgb(${NON_FINITE_RGB.join(", ")})`;
/** Shade index of a non-finite value: one entry past the scale. */
export const NON_FINITE_INDEX = SHADE_COUNT;

/** RGBA bytes of every shade and then of NON_FINITE_INDEX, (SHADE_COUNT + 1) * 4 values, for ImageData fills. */
export const SHADE_RGBA = (() => {
  const table = new Uint8ClampedArray((SHADE_COUNT + 1) * 4);
  for (let index = 0; index < SHADE_COUNT; index++) {
    const [r, g, b] = interpolateStops((index - ZERO_INDEX) / ZERO_INDEX);
    table.set([r, g, b, 255], index * 4);
  }
  table.set([...NON_FINITE_RGB, 255], NON_FINITE_INDEX * 4);
  return table;
})();

/**
 * Returns the shade index of `value` on the symmetric domain [-max, max].
 * Only an exact zero gets the neutral shade, so a small nonzero update never
 * reads as "no update". NaN and ±Infinity get NON_FINITE_INDEX.
 */
export function shadeIndex(value, max) {
  if (!Number.isFinite(value)) return NON_FINITE_INDEX;
  if (value === 0 || !(max > 0)) return ZERO_INDEX;
  const scaled = Math.max(-1, Math.min(1, value / max));
  let index = Math.round(ZERO_INDEX + scaled * ZERO_INDEX);
  if (index === ZERO_INDEX) index += value > 0 ? 1 : -1;
  return index;
}

/** CSS colour of `position` in [-1, 1] on the scale. */
export function cssColour(position, alpha = 1) {
  const [r, g, b] = interpolateStops(Math.max(-1, Math.min(1, position)));
  return alpha === 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/**
 * CSS linear-gradient of the scale from position `from` (−1: the whole
 * scale, 0: its positive half) to +1, for legends.
 */
export function cssGradient(from = -1) {
  const parts = STOPS.filter(([position]) => position >= from).map(
    ([position]) => `${cssColour(position)} ${((position - from) / (1 - from)) * 100}%`,
  );
  return `linear-gradient(to right, ${parts.join(", ")})`;
}
