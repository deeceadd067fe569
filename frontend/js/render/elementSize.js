// Sizes of elements as the last layout computed them, read without forcing a
// layout. Reading clientWidth after the page changed text or styles in the
// same task makes the browser lay out the whole page there and then, and the
// views draw right after the counters change their text. A ResizeObserver
// records each observed element's client size whenever it changes; the
// views read the recorded size instead.

const sizes = new WeakMap(); // element → { width, height } in CSS px
let observer = null; // made on first use: the stream worker imports modules that import this one, and has no ResizeObserver

/** Returns the element's clientWidth and clientHeight as of the last layout; the first call measures. */
export function clientSize(element) {
  let size = sizes.get(element);
  if (size === undefined) {
    size = { width: element.clientWidth, height: element.clientHeight };
    sizes.set(element, size);
    observer ??= new ResizeObserver((entries) => {
      // layout is up to date while observations are delivered, so these reads are cheap
      for (const { target } of entries) sizes.set(target, { width: target.clientWidth, height: target.clientHeight });
    });
    observer.observe(element);
  }
  return size;
}
