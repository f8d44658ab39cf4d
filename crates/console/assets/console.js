// Gatehouse console: live inbox updates and copy buttons. Every page
// works without this file; it only saves a reload.
(function () {
  "use strict";

  // The inbox: on each event from the server, fetch this very page again
  // and swap in its table body (rendered and escaped by the server).
  var status = document.getElementById("live-status");
  var inbox = document.getElementById("inbox");
  if (status && inbox && window.EventSource && window.fetch && window.DOMParser) {
    var source = new EventSource(status.getAttribute("data-events"));
    var refresh = function () {
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (text) {
          var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("inbox");
          var current = document.getElementById("inbox");
          if (fresh && current) { current.replaceWith(document.importNode(fresh, true)); }
        })
        .catch(function () { status.textContent = "Live updates paused: reload the page."; });
    };
    source.addEventListener("approval", refresh);
    source.addEventListener("open", function () {
      status.textContent = "Live: new requests appear here without reloading.";
      refresh();
    });
    source.addEventListener("error", function () {
      status.textContent = "Live updates paused: reconnecting (or reload the page).";
    });
  }

  // Copy buttons: data-copy holds the text.
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("button[data-copy]") : null;
    if (!button || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.firstChild.textContent = "Copied";
    });
  });
})();
