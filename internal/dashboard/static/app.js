// Progressive enhancement of the Audit tab: older entries load as the end
// of the table scrolls into view (the "Older entries" link works without
// this script), and entries written after the page was read arrive live.
(function () {
  "use strict";
  var table = document.getElementById("audit");
  if (!table) { return; }
  var body = table.tBodies[0];

  function loadMore(link) {
    var row = link.closest("tr");
    link.removeAttribute("data-more");
    fetch(link.href, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(r.status); }
      return r.text();
    }).then(function (html) {
      var t = document.createElement("tbody");
      t.innerHTML = html;
      while (t.firstElementChild) { body.insertBefore(t.firstElementChild, row); }
      row.remove();
      watchMore();
    }).catch(function () { link.setAttribute("data-more", ""); });
  }

  var observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (e.isIntersecting && e.target.hasAttribute("data-more")) { observer.unobserve(e.target); loadMore(e.target); }
    });
  }) : null;
  function watchMore() {
    var link = body.querySelector("a[data-more]");
    if (link && observer) { observer.observe(link); }
  }
  watchMore();

  var events = table.getAttribute("data-events");
  if (events && "EventSource" in window) {
    var source = new EventSource(events);
    source.addEventListener("entry", function (e) {
      var t = document.createElement("tbody");
      t.innerHTML = e.data;
      var row = t.firstElementChild;
      if (!row) { return; }
      row.classList.add("fresh");
      body.insertBefore(row, body.firstElementChild);
      var empty = document.querySelector("p.empty");
      if (empty) { empty.remove(); }
    });
    source.addEventListener("reload", function () { source.close(); window.location.reload(); });
  }
})();
