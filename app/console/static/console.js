// calora console: live updates for queued and running reviews, by polling the read-only JSON API.
// No library; pages work without this script, it only keeps them current.
(function () {
  "use strict";
  var body = document.body;
  var mode = body.getAttribute("data-live");
  if (!mode) { return; }
  var api = body.getAttribute("data-api");
  var seconds = parseFloat(body.getAttribute("data-poll-seconds")) || 3;
  var status = document.getElementById("live-status");
  var failures = 0;

  function say(text) { if (status) { status.textContent = text; } }

  function formatDuration(s) {
    if (s === null || s === undefined) { return "\u2014"; }
    if (s < 10) { return s.toFixed(1) + " s"; }
    if (s < 600) { return Math.round(s) + " s"; }
    return Math.round(s / 60) + " min";
  }

  function signature(review) {
    return [review.state, review.decision, review.blockers, review.majors, review.minors, review.nits].join("|");
  }

  function updateRow(row, review) {
    var stage = row.querySelector('[data-field="stage"]');
    if (stage && review.stage) { stage.textContent = review.stage; }
    var took = row.querySelector('[data-field="duration"]');
    if (took) { took.textContent = formatDuration(review.duration_s); }
  }

  function onReviews(data) {
    var rows = {};
    Array.prototype.forEach.call(document.querySelectorAll("tr[data-key]"), function (row) {
      rows[row.getAttribute("data-key")] = row;
    });
    var changed = data.reviews.length !== Object.keys(rows).length;
    data.reviews.forEach(function (item) {
      var row = rows[item.key];
      if (!row) { changed = true; return; }
      if (row.getAttribute("data-state") !== item.review.state) { changed = true; return; }
      updateRow(row, item.review);
    });
    if (changed) { window.location.reload(); return false; }
    return data.reviews.some(function (item) { return item.review.state === "queued" || item.review.state === "running"; });
  }

  function onReview(data) {
    var review = data.review;
    if (review.state !== body.getAttribute("data-state")) { window.location.reload(); return false; }
    updateRow(document, review);
    return review.state === "queued" || review.state === "running";
  }

  function poll() {
    fetch(api, { headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); throw new Error("login needed"); }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        var more = mode === "reviews" ? onReviews(data) : onReview(data);
        if (more) {
          say("Live: refreshed " + new Date().toLocaleTimeString() + ".");
          window.setTimeout(poll, seconds * 1000);
        } else {
          say("");
        }
      })
      .catch(function () {
        failures += 1;
        say("Live updates paused: the server did not answer (" + failures + ").");
        window.setTimeout(poll, Math.min(60, seconds * Math.pow(2, failures)) * 1000);
      });
  }

  say("Live: watching for changes every " + seconds + " s.");
  window.setTimeout(poll, seconds * 1000);
})();
