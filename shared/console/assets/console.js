// wxnotify console: the one script (CSP script-src 'self'). It refreshes a
// running batch's progress by polling the JSON the server lays out.
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
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("progress");
    if (box && box.getAttribute("data-live") === "1") { setTimeout(function () { refresh(box); }, 2000); }
  });
})();
