// wxnotify console: the one script (CSP script-src 'self'). It refreshes a
// running batch's progress by polling the JSON the server lays out, and
// its chart by fetching the SVG the server draws.
"use strict";
(function () {
  function refresh(box) {
    var url = box.getAttribute("data-url");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (p) {
        if (!p) { return; }
        ["total", "sent", "skipped", "failed", "unknown", "pending"].forEach(function (k) {
          var cell = box.querySelector("td[data-k=\"" + k + "\"]");
          if (cell) { cell.textContent = String(p[k]); }
        });
        var st = box.querySelector("[data-k=\"status\"]");
        if (st) { st.textContent = p.status; st.className = "badge b-" + p.status; }
        (p.segs || []).forEach(function (s) {
          var rect = box.querySelector("rect[data-k=\"" + s.Key + "\"]");
          if (rect) { rect.setAttribute("x", String(s.X)); rect.setAttribute("width", String(s.W)); }
        });
        document.querySelectorAll("[data-when]").forEach(function (el) {
          el.hidden = el.getAttribute("data-when").split(" ").indexOf(p.status) < 0;
        });
        refreshChart();
        box.setAttribute("data-refreshed", String(Date.now()));
        if (p.final) {
          box.removeAttribute("data-live");
          var live = box.querySelector(".live");
          if (live) { live.remove(); }
          var actions = document.getElementById("actions");
          if (actions) { actions.remove(); }
          return;
        }
        setTimeout(function () { refresh(box); }, 2000);
      })
      .catch(function () { setTimeout(function () { refresh(box); }, 5000); });
  }
  // refreshChart swaps the batch's chart for the one the server draws now
  // (an SVG document, parsed, never run).
  function refreshChart() {
    var holder = document.getElementById("chart-box");
    if (!holder) { return; }
    fetch(holder.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "image/svg+xml" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) { return; }
        var svg = new DOMParser().parseFromString(text, "image/svg+xml").documentElement;
        if (!svg || svg.nodeName !== "svg" || svg.getAttribute("id") !== "batch-chart") { return; }
        var node = document.importNode(svg, true);
        var old = document.getElementById("batch-chart");
        if (old) { old.replaceWith(node); } else { holder.appendChild(node); }
        holder.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {});
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("progress");
    if (box && box.getAttribute("data-live") === "1") { setTimeout(function () { refresh(box); }, 2000); }
  });
})();
