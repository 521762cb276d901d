// Charts: progressive enhancement of the server-rendered SVG charts (src/web/usage/chart.rs).
// Without this script the charts, their <title> hover texts and the tables all work; with it,
// legend entries become toggle buttons that hide a series, and each period shows a tooltip at
// the pointer listing every series. The periods are keyboard reachable: Tab into the chart,
// then the arrow keys (Home/End) move from one period to the next.
"use strict";
(function () {
  function tooltipFor(fig) {
    var tip = fig.querySelector(".chart-tooltip");
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "chart-tooltip";
      tip.hidden = true;
      tip.setAttribute("aria-hidden", "true");
      fig.appendChild(tip);
    }
    return tip;
  }

  function fill(tip, column, hidden) {
    var lines = (column.getAttribute("data-lines") || "").split("\n");
    tip.textContent = "";
    var head = document.createElement("strong");
    head.textContent = lines[0];
    tip.appendChild(head);
    lines.slice(1).forEach(function (line) {
      var parts = line.split("|");
      if (parts.length < 3 || hidden[parts[1]]) return;
      var row = document.createElement("div");
      var dot = document.createElement("span");
      dot.className = "swatch-dot";
      dot.style.background = parts[0];
      row.appendChild(dot);
      row.appendChild(document.createTextNode(parts[1] + ": " + parts.slice(2).join("|")));
      tip.appendChild(row);
    });
  }

  // Places the tooltip near (x, y), figure coordinates, inside the figure.
  function place(fig, tip, x, y) {
    tip.hidden = false;
    var width = fig.clientWidth;
    var left = x + 14;
    if (left + tip.offsetWidth > width) left = Math.max(0, x - tip.offsetWidth - 14);
    tip.style.left = left + "px";
    tip.style.top = Math.max(0, y - tip.offsetHeight / 2) + "px";
  }

  function enhance(root) {
    root.querySelectorAll("figure.chart-figure").forEach(function (fig) {
      if (fig.dataset.enhanced) return;
      fig.dataset.enhanced = "1";
      // A wide and a narrow drawing of the same chart; the stylesheet shows one of them.
      var svgs = Array.prototype.slice.call(fig.querySelectorAll("svg.chart"));
      if (!svgs.length) return;
      var hidden = {};
      fig.querySelectorAll("[data-legend]").forEach(function (item) {
        var name = item.dataset.legend;
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-sm btn-invisible legend-toggle";
        button.setAttribute("aria-pressed", "true");
        button.title = "Show or hide " + name;
        while (item.firstChild) button.appendChild(item.firstChild);
        item.appendChild(button);
        button.addEventListener("click", function () {
          var shown = button.getAttribute("aria-pressed") === "true";
          button.setAttribute("aria-pressed", shown ? "false" : "true");
          hidden[name] = shown;
          fig.querySelectorAll("svg.chart g[data-series]").forEach(function (g) {
            if (g.dataset.series === name) g.classList.toggle("series-hidden", shown);
          });
        });
      });
      var tip = tooltipFor(fig);
      svgs.forEach(function (svg) { periods(fig, svg, tip, hidden); });
    });
  }

  // The tooltip and keyboard steps over one drawing's periods.
  function periods(fig, svg, tip, hidden) {
    var columns = Array.prototype.slice.call(svg.querySelectorAll(".bar-hit"));
    // The script's tooltip replaces the browser's own title box.
    columns.forEach(function (c) {
      var t = c.querySelector("title");
      if (t) t.remove();
    });
    svg.addEventListener("mousemove", function (event) {
      var column = event.target.closest && event.target.closest(".bar-hit");
      if (!column) { tip.hidden = true; return; }
      fill(tip, column, hidden);
      var box = fig.getBoundingClientRect();
      place(fig, tip, event.clientX - box.left, event.clientY - box.top);
    });
    svg.addEventListener("mouseleave", function () { tip.hidden = true; });
    function show(column) {
      fill(tip, column, hidden);
      var box = fig.getBoundingClientRect();
      var r = column.getBoundingClientRect();
      place(fig, tip, r.left + r.width / 2 - box.left, r.top + r.height / 3 - box.top);
    }
    columns.forEach(function (column, i) {
      column.addEventListener("focus", function () { show(column); });
      column.addEventListener("blur", function () { tip.hidden = true; });
      column.addEventListener("keydown", function (event) {
        var next = null;
        if (event.key === "ArrowRight" || event.key === "ArrowDown") next = columns[i + 1];
        if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = columns[i - 1];
        if (event.key === "Home") next = columns[0];
        if (event.key === "End") next = columns[columns.length - 1];
        if (event.key === "Escape") { tip.hidden = true; return; }
        if (!next) return;
        event.preventDefault();
        column.setAttribute("tabindex", "-1");
        next.setAttribute("tabindex", "0");
        next.focus();
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:afterSwap", function (event) { enhance(event.target); });
})();
