// Building the page. Model, feature and category names come from pickles: they only ever go in as
// text (a text node, or an attribute's value), never as markup, so a name like
// <img src=x onerror=alert(1)> shows as those characters and runs nothing.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked" || name === "selected") element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  return fill(element, children);
}

export function fill(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function replace(element, ...children) {
  element.replaceChildren();
  return fill(element, children);
}

export function table(headings, rows, attributes = {}) {
  return h("table", attributes,
    h("thead", {}, h("tr", {}, headings.map((heading) => h("th", {}, heading)))),
    h("tbody", {}, rows.map((cells) => cells instanceof Node ? cells : h("tr", {}, cells.map((cell) => h("td", {}, cell))))));
}

// The first `shown` items drawn into a grid, and a button that draws the rest into it (none when
// there is no rest): a model of 200 features opens with a page, not 200 charts.
export function grid(items, shown, draw) {
  const into = h("div", { class: "grid" }, draw(items.slice(0, shown)));
  const rest = items.slice(shown);
  const more = rest.length ? h("button", { type: "button", onclick: (event) => {
    into.append(...draw(rest));
    event.target.remove();
  } }, `Show the other ${rest.length} features`) : null;
  return [into, more];
}

export function failure(error) {
  const code = error.code ? h("code", {}, error.code) : null;
  return h("p", { class: "error", role: "alert" }, code, code ? ": " : "", error.message);
}

export function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function share(value) {
  return value === null || value === undefined ? "" : `${(100 * value).toFixed(1)}%`;
}

export function count(value) {
  return value === null || value === undefined ? "" : Number(value).toLocaleString();
}

export function bytes(value) {
  const units = ["B", "KB", "MB", "GB"];
  let size = value, unit = 0;
  while (size >= 1024 && unit < units.length - 1) { size /= 1024; unit += 1; }
  return `${size.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}
