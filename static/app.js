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

// Pages swapped in by htmx (boosted navigation) keep the <body> of the first page, so the
// CSRF header comes from the token rendered with the current page's content.
document.addEventListener("htmx:configRequest", function (event) {
  var holder = document.getElementById("csrf-token");
  if (holder && holder.dataset.token) {
    event.detail.headers["X-CSRF-Token"] = holder.dataset.token;
  }
});

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
