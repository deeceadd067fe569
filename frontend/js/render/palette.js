// Diverging colour scale shared by the network view and the heatmaps:
// orange for negative values, blue for positive, neutral grey for exactly zero.

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

/** RGBA bytes of every shade, SHADE_COUNT * 4 values, for ImageData fills. */
export const SHADE_RGBA = (() => {
  const table = new Uint8ClampedArray(SHADE_COUNT * 4);
  for (let index = 0; index < SHADE_COUNT; index++) {
    const [r, g, b] = interpolateStops((index - ZERO_INDEX) / ZERO_INDEX);
    table.set([r, g, b, 255], index * 4);
  }
  return table;
})();

/**
 * Returns the shade index of `value` on the symmetric domain [-max, max].
 * Only an exact zero gets the neutral shade, so a small nonzero update never
 * reads as "no update".
 */
export function shadeIndex(value, max) {
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

/** CSS linear-gradient of the whole scale, negative on the left, for legends. */
export function cssGradient() {
  const parts = STOPS.map(([position]) => `${cssColour(position)} ${((position + 1) / 2) * 100}%`);
  return `linear-gradient(to right, ${parts.join(", ")})`;
}
