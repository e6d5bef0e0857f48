// A 404 answer to an htmx request is a short Korean part the server aims at #htmx-error
// (config/errors.py). htmx does not swap 4xx answers by default; let this one through, as a notice
// rather than an error (so pages' "server error" handlers stay quiet).
document.addEventListener("htmx:beforeSwap", function (e) {
  var xhr = e.detail.xhr;
  if (xhr && xhr.status === 404 && xhr.getResponseHeader("HX-Retarget") === "#htmx-error") {
    e.detail.shouldSwap = true;
    e.detail.isError = false;
  }
});
