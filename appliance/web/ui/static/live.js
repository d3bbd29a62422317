// Live updates: the server streams a part of the page, rendered, as
// Server-Sent Events (GET /ui/events; ?view=calls or sdgs for those
// pages); this swaps it into the element marked data-live (whose
// data-live-event names the event, default "status"). Self-hosted and
// CSP-compliant (no inline script, no eval); without it the pages are
// still complete, just not live.
(function () {
  'use strict';
  var source = null;
  var url = '';

  function say(text) {
    var el = document.querySelector('[data-live-state]');
    if (el) el.textContent = text;
  }

  function close() {
    if (source) { source.close(); source = null; }
    url = '';
  }

  function connect() {
    var target = document.querySelector('[data-live]');
    if (!target) { close(); return; }
    var want = target.getAttribute('data-live');
    if (source && url === want) return;
    close();
    url = want;
    source = new EventSource(want);
    source.addEventListener(target.getAttribute('data-live-event') || 'status', function (e) {
      var el = document.querySelector('[data-live]');
      if (el) el.innerHTML = e.data;
      say('Live: updates as it happens.');
    });
    source.addEventListener('signed-out', function () {
      close();
      window.location.assign('/login');
    });
    source.onerror = function () {
      if (source && source.readyState === EventSource.CLOSED) {
        // Refused (the session ended, e.g. the node restarted): reload,
        // which leads to the sign-in page when signed out.
        close();
        say('Live updates stopped; reloading…');
        window.setTimeout(function () { window.location.reload(); }, 2000);
        return;
      }
      say('Connection to the node lost; reconnecting…');
    };
  }

  // Copy buttons (data-copy names the field whose value they copy): hidden
  // in the page, shown here where the clipboard can be written.
  function copyButtons() {
    if (!navigator.clipboard) return;
    document.querySelectorAll('button[data-copy][hidden]').forEach(function (b) { b.hidden = false; });
  }
  document.addEventListener('click', function (e) {
    var b = e.target.closest && e.target.closest('button[data-copy]');
    var field = b && document.querySelector(b.getAttribute('data-copy'));
    if (!field || !navigator.clipboard) return;
    navigator.clipboard.writeText(field.value).then(function () { b.textContent = 'Copied'; });
  });
  document.addEventListener('DOMContentLoaded', copyButtons);
  document.addEventListener('htmx:afterSettle', copyButtons);

  document.addEventListener('DOMContentLoaded', connect);
  document.addEventListener('htmx:afterSettle', connect);
  window.addEventListener('pagehide', close);
  window.addEventListener('pageshow', connect);
})();
