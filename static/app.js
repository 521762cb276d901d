// Orgkeeper's own script: small progressive enhancements. Every page works without it.
"use strict";

// Forms marked data-confirm ask before submitting (irreversible or disruptive actions).
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// htmx asks the same question for elements with hx-confirm; nothing else to do here.

// Show UTC timestamps in the reader's local time, keeping the UTC value on hover.
function localizeTimes(root) {
  var nodes = (root || document).querySelectorAll("time[datetime][data-local]");
  nodes.forEach(function (node) {
    var date = new Date(node.getAttribute("datetime"));
    if (!isNaN(date)) {
      node.title = node.getAttribute("datetime");
      node.textContent = date.toLocaleString();
    }
  });
}
document.addEventListener("DOMContentLoaded", function () { localizeTimes(document); });
document.addEventListener("htmx:afterSwap", function (event) { localizeTimes(event.target); });
