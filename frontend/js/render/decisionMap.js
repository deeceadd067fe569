// Drawing of maps over the input plane of a 2-D data set, shared by the lab's
// decision maps and the dashboard's decision-boundary panel. The values come
// from `POST /api/runs/{run_id}/predict` with `grid`: its axes list the grid
// points, x then y, and its per-point arrays are row-major with the rows
// running from the smallest y up. Grid points are cell centres, so a map
// spans half a cell beyond the first and last point of each axis.

/** Class colours as [r, g, b]; classes 0 and 1 use the dashboard's orange and blue. */
export const CLASS_COLOURS = [
  [203, 96, 26], [58, 116, 181], [46, 139, 87], [142, 91, 181], [192, 57, 43],
  [31, 154, 165], [138, 109, 30], [209, 73, 123], [96, 96, 96], [120, 160, 40],
];

const POINT_RADIUS_PX = 3;
const TEST_SIDE_PX = 5.4; // a square of about the area of the dot
// Edge colours that separate a point from the map under it and mark its split.
const TRAIN_EDGE = "#ffffff";
const TEST_EDGE = "#1f2329";

/** Returns whether a run's inputs are two plain features, so that its input plane can be drawn. */
export function isTwoDimensional(run) {
  return run.input_shape === null && run.layer_sizes[0] === 2;
}

/** Returns the class colour of `index` as a CSS colour. */
export function classColour(index) {
  const [r, g, b] = CLASS_COLOURS[index % CLASS_COLOURS.length];
  return `rgb(${r}, ${g}, ${b})`;
}

/** Returns one legend item per class: a swatch of class `swatchClassName` in its colour, and its name. */
export function classLegendItems(classCount, classNames, swatchClassName) {
  const items = [];
  for (let index = 0; index < classCount; index++) {
    const item = document.createElement("span");
    item.className = "legend-item";
    const swatch = document.createElement("span");
    swatch.className = swatchClassName;
    swatch.style.background = classColour(index);
    item.append(swatch, `class ${classNames?.[index] ?? index}`);
    items.push(item);
  }
  return items;
}

/** Returns the index of the largest probability; the first one on a tie. */
export function argmax(probabilities) {
  let best = 0;
  for (let c = 1; c < probabilities.length; c++) if (probabilities[c] > probabilities[best]) best = c;
  return best;
}

/**
 * Returns [r, g, b] for a point's class probabilities: the colour of the
 * most probable class, mixed with white by confidence. Confidence 1/C
 * (uniform over C classes) is pale and confidence 1 is strong.
 */
export function decisionColour(probabilities) {
  const classCount = probabilities.length;
  const best = argmax(probabilities);
  const strength = Math.max(0, (probabilities[best] - 1 / classCount) / (1 - 1 / classCount));
  const alpha = 0.18 + 0.62 * strength;
  return CLASS_COLOURS[best % CLASS_COLOURS.length].map((channel) => Math.round(255 + alpha * (channel - 255)));
}

/**
 * Paints one grid-resolution image with the top row at the largest y and
 * returns it as a canvas to scale: `colourOf(pointIndex)` returns [r, g, b].
 */
export function gridImage(columns, rows, colourOf) {
  const image = new ImageData(columns, rows);
  for (let row = 0; row < rows; row++) {
    const sourceRow = rows - 1 - row; // the reply's rows run from the smallest y up
    for (let column = 0; column < columns; column++) {
      image.data.set([...colourOf(sourceRow * columns + column), 255], (row * columns + column) * 4);
    }
  }
  const source = document.createElement("canvas");
  source.width = columns;
  source.height = rows;
  source.getContext("2d").putImageData(image, 0, 0);
  return source;
}

/** Returns [low, high] of the map along one axis: half a cell beyond its first and last grid point. */
export function mapExtent(axis) {
  const step = axis.length > 1 ? (axis[axis.length - 1] - axis[0]) / (axis.length - 1) : 1;
  return [axis[0] - step / 2, axis[axis.length - 1] + step / 2];
}

/**
 * Sizes the canvas's backing store to its CSS size times the pixel ratio,
 * clears it and returns a context that draws in CSS pixels.
 */
export function prepareCanvas(canvas) {
  const pixelRatio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * pixelRatio);
  canvas.height = Math.round(canvas.clientHeight * pixelRatio);
  const context = canvas.getContext("2d");
  context.setTransform(pixelRatio, 0, 0, pixelRatio, 0, 0);
  return context;
}

/** Draws a grid image from gridImage scaled, smoothed, over the whole of a freshly prepared canvas. */
export function paintGridImage(canvas, source) {
  const context = prepareCanvas(canvas);
  context.imageSmoothingEnabled = true;
  context.drawImage(source, 0, 0, canvas.clientWidth, canvas.clientHeight);
  return context;
}

/**
 * Draws labelled examples over a map with `axes` from a grid reply, in the
 * canvas's current transform (CSS pixels). Each of `pointSets` is
 * { features: (n, 2) row-major, labels: (n,), marker }, filled with the
 * class colour: marker "train" is a dot with a white edge, "test" a square
 * with a dark edge. Returns the number of points drawn from each set.
 */
export function drawPoints(canvas, axes, pointSets) {
  const context = canvas.getContext("2d");
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const [xLow, xHigh] = mapExtent(axes.x);
  const [yLow, yHigh] = mapExtent(axes.y);
  const toX = (x) => ((x - xLow) / (xHigh - xLow)) * width;
  const toY = (y) => ((yHigh - y) / (yHigh - yLow)) * height;
  context.lineWidth = 1;
  return pointSets.map(({ features, labels, marker }) => {
    context.strokeStyle = marker === "test" ? TEST_EDGE : TRAIN_EDGE;
    for (let index = 0; index < labels.length; index++) {
      const x = toX(features[2 * index]);
      const y = toY(features[2 * index + 1]);
      context.fillStyle = classColour(labels[index]);
      context.beginPath();
      if (marker === "test") {
        context.rect(x - TEST_SIDE_PX / 2, y - TEST_SIDE_PX / 2, TEST_SIDE_PX, TEST_SIDE_PX);
      } else {
        context.arc(x, y, POINT_RADIUS_PX, 0, 2 * Math.PI);
      }
      context.fill();
      context.stroke();
    }
    return labels.length;
  });
}
