// Live updates of the status page: the server streams the status board,
// rendered, as Server-Sent Events (GET /ui/events); this swaps it in.
// Self-hosted and CSP-compliant (no inline script, no eval); without it
// the page is still complete, just not live.
(function () {
  'use strict';
  var source = null;

  function say(text) {
    var el = document.querySelector('[data-live-state]');
    if (el) el.textContent = text;
  }

  function connect() {
    var board = document.querySelector('[data-live]');
    if (!board) {
      if (source) { source.close(); source = null; }
      return;
    }
    if (source) return;
    source = new EventSource(board.getAttribute('data-live'));
    source.addEventListener('status', function (e) {
      var el = document.querySelector('[data-live]');
      if (el) el.innerHTML = e.data;
      say('Live: updates as it happens.');
    });
    source.addEventListener('signed-out', function () {
      source.close(); source = null;
      window.location.assign('/login');
    });
    source.onerror = function () {
      if (source && source.readyState === EventSource.CLOSED) {
        // Refused (the session ended, e.g. the node restarted): reload,
        // which leads to the sign-in page when signed out.
        source = null;
        say('Live updates stopped; reloading…');
        window.setTimeout(function () { window.location.reload(); }, 2000);
        return;
      }
      say('Connection to the node lost; reconnecting…');
    };
  }

  document.addEventListener('DOMContentLoaded', connect);
  document.addEventListener('htmx:afterSettle', connect);
  window.addEventListener('pagehide', function () { if (source) { source.close(); source = null; } });
  window.addEventListener('pageshow', connect);
})();
