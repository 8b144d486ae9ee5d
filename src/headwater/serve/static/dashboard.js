/* headwater dashboards: draw every chart panel with vega-embed (SVG, no action menu).
 *
 * A chart panel is <div class="chart" data-panel="i"> next to
 * <script type="application/json" class="vl-spec"> holding its Vega-Lite spec. Each
 * chart is drawn once: "drawing" while vega-embed works, then "drawn" (an <svg> inside),
 * or "error" with the reason shown in the panel. Panels swapped in by htmx (a filter
 * change) are drawn as they arrive; a page restored from htmx's history is redrawn.
 */
(function () {
  "use strict";

  var SELECTOR = ".chart[data-panel]";

  function specOf(el) {
    var holder = el.parentElement && el.parentElement.querySelector("script.vl-spec");
    return holder ? JSON.parse(holder.textContent) : null;
  }

  function fail(el, message) {
    el.classList.remove("drawing");
    el.classList.add("error");
    el.setAttribute("role", "alert");
    el.textContent = "The chart could not be drawn: " + message;
  }

  function drawOne(el) {
    if (el.classList.contains("drawn") || el.classList.contains("drawing")) {
      return;
    }
    if (typeof window.vegaEmbed !== "function") {
      fail(el, "the chart library did not load");
      return;
    }
    var spec;
    try {
      spec = specOf(el);
    } catch (e) {
      fail(el, "its specification is not valid JSON");
      return;
    }
    if (!spec) {
      fail(el, "its specification is missing");
      return;
    }
    el.classList.remove("error");
    el.classList.add("drawing");
    window.vegaEmbed(el, spec, { renderer: "svg", actions: false, mode: "vega-lite" })
      .then(function (result) {
        el.classList.remove("drawing");
        el.classList.add("drawn");
        el.vegaView = result.view;
      })
      .catch(function (err) {
        fail(el, (err && err.message) || String(err));
      });
  }

  function draw(root) {
    var scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches(SELECTOR)) {
      drawOne(scope);
    }
    Array.prototype.forEach.call(scope.querySelectorAll(SELECTOR), drawOne);
  }

  function redraw() {
    Array.prototype.forEach.call(document.querySelectorAll(SELECTOR), function (el) {
      el.classList.remove("drawn", "drawing", "error");
      el.textContent = "";
    });
    draw(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  } else {
    draw(document);
  }
  // htmx fires htmx:load on every element it swaps in (and on <body> when it starts).
  document.addEventListener("htmx:load", function (event) { draw(event.target); });
  // A page restored from htmx's history cache holds SVG without its view: draw again.
  document.addEventListener("htmx:historyRestore", redraw);
})();
