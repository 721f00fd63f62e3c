/* The two DOM helpers every module uses: $ (an element by its id) and make (a new
 * element with its attributes, text and children; text always as textContent, never
 * parsed as HTML). */

export function $(id) {
  return document.getElementById(id);
}

export function make(tag, props, children) {
  var node = document.createElement(tag);
  Object.keys(props || {}).forEach(function (key) {
    var value = props[key];
    if (value === undefined || value === null || value === false) return;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  });
  (children || []).forEach(function (child) {
    if (child) node.append(child);
  });
  return node;
}
