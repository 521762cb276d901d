// Orgkeeper's own script: small progressive enhancements. Every page works without it.
"use strict";

document.documentElement.classList.add("js");

// Forms marked data-confirm ask before submitting (irreversible or disruptive actions), in the
// page rather than with the browser's own "127.0.0.1 says…" box. Without this script the
// server-side checks (and typed confirmations) still apply.
function askInPage(question, onConfirm) {
  var dialog = document.createElement("dialog");
  dialog.className = "confirm-dialog";
  dialog.setAttribute("aria-labelledby", "confirm-dialog-text");
  var text = document.createElement("p");
  text.id = "confirm-dialog-text";
  text.textContent = question;
  var actions = document.createElement("div");
  actions.className = "actions";
  var cancel = document.createElement("button");
  cancel.type = "button";
  cancel.textContent = "Cancel";
  cancel.className = "btn confirm-cancel";
  var ok = document.createElement("button");
  ok.type = "button";
  ok.textContent = "Yes, go ahead";
  ok.className = "btn btn-primary confirm-ok";
  actions.appendChild(cancel);
  actions.appendChild(ok);
  dialog.appendChild(text);
  dialog.appendChild(actions);
  document.body.appendChild(dialog);
  dialog.addEventListener("close", function () { dialog.remove(); });
  cancel.addEventListener("click", function () { dialog.close(); });
  ok.addEventListener("click", function () { dialog.close(); onConfirm(); });
  dialog.showModal();
  cancel.focus();
}

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (!question) return;
  if (form.dataset.confirmed === "1") {
    delete form.dataset.confirmed;
    return;
  }
  event.preventDefault();
  event.stopImmediatePropagation();
  var submitter = event.submitter || null;
  askInPage(question, function () {
    form.dataset.confirmed = "1";
    if (form.requestSubmit) {
      form.requestSubmit(submitter);
    } else {
      form.submit();
    }
  });
}, true);

// Pages swapped in by htmx (boosted navigation) keep the <body> of the first page, so the
// CSRF header comes from the token rendered with the current page's content.
document.addEventListener("htmx:configRequest", function (event) {
  var holder = document.getElementById("csrf-token");
  if (holder && holder.dataset.token) {
    event.detail.headers["X-CSRF-Token"] = holder.dataset.token;
  }
});

// One date format everywhere: the reader's local time ("1 Dec 2026, 14:05"), with the UTC
// value on hover. Dates without a time of day ("2026-12-01") stay dates.
var DATE_ONLY = { day: "numeric", month: "short", year: "numeric" };
var DATE_TIME = { day: "numeric", month: "short", year: "numeric", hour: "numeric", minute: "2-digit" };
function utcLabel(date) {
  return date.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}
function localizeTimes(root) {
  (root || document).querySelectorAll("time[datetime]").forEach(function (node) {
    if (node.dataset.localized) return;
    var raw = node.getAttribute("datetime");
    var date = new Date(raw);
    if (isNaN(date)) return;
    var withTime = node.textContent.indexOf(":") !== -1;
    node.title = withTime ? utcLabel(date) : utcLabel(date).slice(0, 10) + " (UTC)";
    node.textContent = withTime
      ? date.toLocaleString(undefined, DATE_TIME)
      : date.toLocaleDateString(undefined, Object.assign({ timeZone: "UTC" }, DATE_ONLY));
    node.dataset.localized = "1";
  });
}

// Bulk buttons act on the ticked rows: disabled until something is ticked.
function syncBulk(root) {
  (root || document).querySelectorAll("form[data-bulk]").forEach(function (form) {
    var any = form.querySelector("input[type=checkbox][name]:checked") !== null;
    form.querySelectorAll("button[data-needs-selection]").forEach(function (b) { b.disabled = !any; });
    var count = form.querySelector("[data-selection-count]");
    if (count) {
      var n = form.querySelectorAll("input[type=checkbox][name]:checked").length;
      count.textContent = n === 0 ? "Tick keys to act on them." : n + (n === 1 ? " key selected." : " keys selected.");
    }
  });
}
document.addEventListener("change", function (event) {
  var form = event.target.closest && event.target.closest("form[data-bulk]");
  if (form) syncBulk(form.parentNode);
});

// The phone navigation: collapsed behind a Menu button (shown only on narrow screens).
document.addEventListener("click", function (event) {
  var toggle = event.target.closest && event.target.closest(".nav-toggle");
  if (!toggle) return;
  var open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
  document.querySelector(".site-header").classList.toggle("menu-open", open);
});

function enhancePage(root) {
  localizeTimes(root);
  syncBulk(root);
  document.querySelectorAll(".nav-toggle[hidden]").forEach(function (b) { b.hidden = false; });
}
document.addEventListener("DOMContentLoaded", function () { enhancePage(document); });
document.addEventListener("htmx:afterSwap", function (event) { enhancePage(event.target); });
// Boosted navigation keeps the header: close the phone menu after following a link.
document.addEventListener("htmx:afterSettle", function () {
  var bar = document.querySelector(".site-header.menu-open");
  if (bar) {
    bar.classList.remove("menu-open");
    var toggle = bar.querySelector(".nav-toggle");
    if (toggle) toggle.setAttribute("aria-expanded", "false");
  }
});
