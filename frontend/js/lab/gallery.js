// Gallery of examples: the true label next to each rule's predicted class and
// confidence, with the 8×8 or 28×28 image when the run's data is loaded, or the
// two features of a 2-D point. Single sub-networks' classes appear when the
// prediction endpoint supplies them (see predictions.js).

export const GALLERY_SIZE = 24;

/** Returns the rule columns a result has, as [label, score] pairs; weight scaling first. */
export function ruleColumns(result) {
  const columns = [["weight scaling", result.weight_scaling]];
  if (result.mc) {
    columns.push(["MC arithmetic", result.mc.arithmetic.final], ["MC geometric", result.mc.geometric.final]);
  }
  if (result.exact) {
    columns.push(["exact arithmetic", result.exact.arithmetic], ["exact geometric", result.exact.geometric]);
  }
  return columns;
}

/** Returns the example indices the filter selects: "all", "disagree" or "wrong". */
export function selectExamples(result, filter) {
  const columns = ruleColumns(result);
  const reference = result.weight_scaling.predicted;
  const disagree = (index) => columns.some(([, score]) => score.predicted[index] !== reference[index]);
  const wrong = (index) => reference[index] !== result.labels[index];
  const chosen = [];
  for (let index = 0; index < result.labels.length && chosen.length < GALLERY_SIZE; index++) {
    if (filter === "disagree" && !disagree(index)) continue;
    if (filter === "wrong" && !wrong(index)) continue;
    chosen.push(index);
  }
  return chosen;
}

/** Counts the examples where the rules disagree and those weight scaling gets wrong. */
export function countExamples(result) {
  const columns = ruleColumns(result);
  const reference = result.weight_scaling.predicted;
  let disagree = 0;
  let wrong = 0;
  result.labels.forEach((label, index) => {
    if (columns.some(([, score]) => score.predicted[index] !== reference[index])) disagree += 1;
    if (reference[index] !== label) wrong += 1;
  });
  return { disagree, wrong };
}

function drawImage(features, offset, [height, width]) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  for (let pixel = 0; pixel < width * height; pixel++) {
    // features are scaled to [0, 1]; ink is dark on white, as on paper
    const shade = Math.round(255 * (1 - Math.max(0, Math.min(1, features[offset + pixel]))));
    image.data.set([shade, shade, shade, 255], pixel * 4);
  }
  context.putImageData(image, 0, 0);
  canvas.setAttribute("role", "img");
  return canvas;
}

function term(list, name, value, wrong = false) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (wrong) dd.className = "wrong";
  list.append(dt, dd);
}

function exampleCard(index, context) {
  const { result, data, classNames, subnetworks } = context;
  const label = result.labels[index];
  const name = (classIndex) => classNames?.[classIndex] ?? String(classIndex);
  const card = document.createElement("article");
  card.className = "example";
  card.dataset.index = String(index);
  card.dataset.label = String(label);

  const figure = document.createElement("div");
  if (data !== null && data.inputShape !== null) {
    const canvas = drawImage(data.features, index * data.featureCount, data.inputShape);
    canvas.setAttribute("aria-label", `${result.split} example ${index}, label ${name(label)}`);
    figure.append(canvas);
  } else if (data !== null && data.featureCount === 2) {
    figure.className = "coordinates";
    const x0 = data.features[2 * index];
    const x1 = data.features[2 * index + 1];
    figure.textContent = `x₀ ${x0.toFixed(2)}\nx₁ ${x1.toFixed(2)}`;
  }

  const heading = document.createElement("div");
  heading.className = "example-heading";
  const number = Object.assign(document.createElement("span"), { className: "example-index" });
  number.textContent = `${result.split} #${index}`;
  const truth = Object.assign(document.createElement("span"), { className: "example-label" });
  truth.textContent = `true ${name(label)}`;
  heading.append(number, truth);

  const list = document.createElement("dl");
  for (const [rule, score] of ruleColumns(result)) {
    const predicted = score.predicted[index];
    term(list, rule, `${name(predicted)} (${score.confidence[index].toFixed(2)})`, predicted !== label);
  }
  if (figure.childNodes.length > 0) card.append(figure);
  else card.classList.add("no-figure");
  card.append(heading, list);

  const members = subnetworks?.get(index);
  if (members !== undefined) {
    const line = document.createElement("p");
    line.className = "subnetworks";
    const last = members.lastTrained === null ? "" : `last trained (step ${members.lastStep}): ${name(members.lastTrained)}; `;
    line.textContent = `${last}sampled: ${members.sampled.map(name).join(" ")}`;
    card.append(line);
  }
  return card;
}

/**
 * Draws the cards of the examples `filter` selects. `data` is null or
 * { features, featureCount, inputShape } for the result's split; `subnetworks`
 * is null or a Map from example index to single sub-networks' classes, as
 * fetchSubnetworkClasses returns it. Returns the shown indices.
 */
export function renderGallery(container, { result, data, classNames, filter, subnetworks }) {
  const chosen = selectExamples(result, filter);
  const context = { result, data, classNames, subnetworks };
  if (chosen.length === 0) {
    const empty = Object.assign(document.createElement("p"), { className: "muted", textContent: "No example matches." });
    container.replaceChildren(empty);
    return chosen;
  }
  container.replaceChildren(...chosen.map((index) => exampleCard(index, context)));
  return chosen;
}
