// Charts: progressive enhancement of the server-rendered SVG charts (src/web/usage/chart.rs).
// Without this script the charts, their <title> hover texts and the tables all work; with it,
// legend entries become toggle buttons that hide a series, and hovering a bar shows its value
// under the chart (also announced to screen readers).
"use strict";
(function () {
  function enhance(root) {
    root.querySelectorAll("figure.chart-figure").forEach(function (fig) {
      if (fig.dataset.enhanced) return;
      fig.dataset.enhanced = "1";
      var svg = fig.querySelector("svg.chart");
      if (!svg) return;
      fig.querySelectorAll("[data-legend]").forEach(function (item) {
        var name = item.dataset.legend;
        var button = document.createElement("button");
        button.type = "button";
        button.className = "legend-toggle";
        button.setAttribute("aria-pressed", "true");
        button.title = "Show or hide " + name;
        while (item.firstChild) button.appendChild(item.firstChild);
        item.appendChild(button);
        button.addEventListener("click", function () {
          var shown = button.getAttribute("aria-pressed") === "true";
          button.setAttribute("aria-pressed", shown ? "false" : "true");
          svg.querySelectorAll("g[data-series]").forEach(function (g) {
            if (g.dataset.series === name) g.classList.toggle("series-hidden", shown);
          });
        });
      });
      var readout = document.createElement("p");
      readout.className = "chart-readout";
      readout.setAttribute("aria-live", "polite");
      fig.appendChild(readout);
      svg.addEventListener("mouseover", function (event) {
        var shape = event.target.closest("rect, path");
        var title = shape && shape.querySelector("title");
        if (title) readout.textContent = title.textContent;
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:afterSwap", function (event) { enhance(event.target); });
})();
