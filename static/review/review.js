/* Review queue: keyboard-first decisions, synced zoom, lease heartbeat, list selection.
 * Everything here enhances server-rendered pages; without it every button and link still works. */
(function () {
  "use strict";

  var busy = false;
  var rejectArmed = false;
  var lastActivity = Date.now();
  var ACTIVE_MS = 4 * 60 * 1000; // an idle tab stops renewing its lease so the pair frees itself

  window.rvActive = function () { return Date.now() - lastActivity < ACTIVE_MS; };
  ["keydown", "mousemove", "click", "wheel"].forEach(function (ev) {
    document.addEventListener(ev, function () { lastActivity = Date.now(); }, { passive: true });
  });

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function notice(text, level) {
    var pair = $("#pair");
    if (!pair) return;
    var p = $(".rv-notice", pair);
    if (!p) { p = document.createElement("p"); pair.insertBefore(p, pair.firstChild); }
    p.className = "rv-notice " + (level || "info");
    p.textContent = text;
  }

  // Keys go through htmx's API rather than synthetic clicks: a key pressed in the instant after a swap,
  // before htmx has wired up the new part, must not fall back to a full-page form post.
  function send(el) {
    var verb = el.getAttribute("hx-post") ? "POST" : "GET";
    var url = el.getAttribute("hx-post") || el.getAttribute("hx-get");
    if (window.htmx && url) {
      window.htmx.ajax(verb, url, { source: el, target: "#pair", swap: "outerHTML" });
    } else if (el.tagName === "FORM") {
      if (el.requestSubmit) el.requestSubmit(); else el.submit();
    } else {
      el.click();
    }
  }

  function click(sel) {
    var el = $(sel);
    if (!el) return false;
    send(el.tagName === "BUTTON" && el.form ? el.form : el);
    return true;
  }

  function setArmed(on) {
    rejectArmed = on;
    var form = $("#rv-reject-form");
    if (form) form.classList.toggle("armed", on);
  }

  function rejectWith(digit) {
    var form = $("#rv-reject-form");
    if (!form) return;
    var radio = $('input[name="reason"][data-digit="' + digit + '"]', form);
    if (!radio) return;
    radio.checked = true;
    send(form);
  }

  function toggleHelp(force) {
    var help = $("#rv-help");
    if (!help) return;
    var show = typeof force === "boolean" ? force : help.hidden;
    help.hidden = !show;
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    var typing = t && (t.tagName === "TEXTAREA" || t.tagName === "SELECT" ||
      (t.tagName === "INPUT" && !/^(checkbox|radio|button|submit)$/i.test(t.type)));
    if (typing) {
      if (e.key === "Escape") t.blur();
      return;
    }
    if (!$("#pair")) return; // keyboard decisions only on the pair page
    var help = $("#rv-help");
    if (help && !help.hidden) {
      if (e.key === "Escape" || e.key === "?") { toggleHelp(false); e.preventDefault(); }
      return;
    }
    if (busy) { e.preventDefault(); return; }
    var key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (rejectArmed) {
      setArmed(false);
      if (/^[1-8]$/.test(key)) rejectWith(key);
      e.preventDefault();
      return;
    }
    var handled = true;
    switch (key) {
      case "a": handled = click("#rv-approve"); break;
      case "r": if ($("#rv-reject-form")) setArmed(true); break;
      case "s": handled = click("#rv-skip"); break;
      case "u": handled = click("#rv-undo"); break;
      case "j": handled = click("#rv-next"); break;
      case "k": handled = click("#rv-prev"); break;
      case "n": var note = $("#rv-note"); if (note) note.focus(); break;
      case "z": toggleZoomCentre(); break;
      case "p": handled = toggleKeypoints(); break;
      case "?": toggleHelp(); break;
      case "Escape": setArmed(false); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  });

  // The keypoint drawing is a <details> (it opens without JavaScript too); P and the evidence button toggle it.
  function toggleKeypoints() {
    var kp = $("#rv-kp");
    if (!kp) return false;
    kp.open = !kp.open;
    return true;
  }

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (t.closest && t.closest("[data-kp-toggle]")) toggleKeypoints();
    if (t.closest && t.closest("#rv-help-open")) toggleHelp(true);
    if (t.closest && t.closest("#rv-help-close")) toggleHelp(false);
    var help = $("#rv-help");
    if (help && t === help) toggleHelp(false);
    var thumb = t.closest && t.closest(".rv-thumb");
    if (thumb) showThumb(thumb);
  });

  // --- htmx integration: one request at a time, errors shown, focus kept sane -------------------
  // Only requests that replace the pair (decisions, J/K, undo) block keys; lazy parts (price) do not.
  function replacesPair(e) { return e.detail && e.detail.target && e.detail.target.id === "pair"; }
  document.addEventListener("htmx:beforeRequest", function (e) { if (replacesPair(e)) busy = true; });
  document.addEventListener("htmx:afterRequest", function (e) { if (replacesPair(e)) busy = false; });
  document.addEventListener("htmx:afterSwap", function (e) {
    // A new pair ends an armed R; a lazy part (the queue summary after a decision, the price
    // preview) landing between R and the reason must not.
    if (replacesPair(e)) setArmed(false);
    if (document.activeElement && !document.body.contains(document.activeElement)) document.body.focus();
    if (document.activeElement && document.activeElement.closest && document.activeElement.closest("#pair")) {
      document.activeElement.blur();
    }
  });
  document.addEventListener("htmx:responseError", function () {
    busy = false;
    notice("서버 오류가 발생했습니다. 잠시 후 다시 시도하거나 새로고침(F5)해 주세요.", "error");
  });
  document.addEventListener("htmx:sendError", function () {
    busy = false;
    notice("서버에 연결할 수 없습니다. 네트워크를 확인해 주세요.", "error");
  });
  document.addEventListener("review:claimLost", function () {
    notice("이 항목의 검토 잠금이 풀렸습니다. 새로고침(F5)하면 다음 항목을 불러옵니다.", "error");
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initList);
  else initList();

  // --- Synced zoom: the same relative spot on both sides (relative to the outlined regions) ------
  var scale = 2.5;

  function rel(zoom) {
    var v = (zoom.getAttribute("data-rel") || "").split(",").map(parseFloat);
    return v.length === 4 && v.every(function (x) { return !isNaN(x); }) ? v : null;
  }

  function clamp(x) { return Math.max(0, Math.min(1, x)); }

  function mapPoint(from, to, x, y) {
    var a = rel(from), b = rel(to);
    if (a && b && a[2] > 0 && a[3] > 0) {
      return [clamp(b[0] + (x - a[0]) / a[2] * b[2]), clamp(b[1] + (y - a[1]) / a[3] * b[3])];
    }
    return [x, y];
  }

  function zoomAt(zoom, x, y) {
    var frame = $(".rv-frame", zoom);
    if (!frame) return;
    frame.style.transformOrigin = (x * 100).toFixed(2) + "% " + (y * 100).toFixed(2) + "%";
    zoom.style.setProperty("--rv-scale", scale);
    zoom.classList.add("zoomed");
  }

  function zoomBoth(source, x, y) {
    $all(".rv-zoom").forEach(function (z) {
      var p = z === source ? [x, y] : mapPoint(source, z, x, y);
      zoomAt(z, p[0], p[1]);
    });
  }

  function unzoom() { $all(".rv-zoom").forEach(function (z) { z.classList.remove("zoomed"); }); }

  var locked = false;

  function toggleZoomCentre() {
    var zooms = $all(".rv-zoom");
    if (!zooms.length) return;
    if (locked || zooms[0].classList.contains("zoomed")) { locked = false; unzoom(); return; }
    var r = rel(zooms[0]);
    var cx = r ? r[0] + r[2] / 2 : 0.5, cy = r ? r[1] + r[3] / 2 : 0.5;
    locked = true;
    zoomBoth(zooms[0], cx, cy);
  }

  document.addEventListener("mousemove", function (e) {
    var zoom = e.target.closest && e.target.closest(".rv-zoom");
    if (!zoom) return;
    var img = $(".rv-main", zoom);
    if (!img) return;
    // Measure against the unscaled image box so the spot under the cursor stays put while zoomed.
    var frame = $(".rv-frame", zoom);
    var r = frame.getBoundingClientRect();
    var w = frame.offsetWidth, h = frame.offsetHeight;
    var s = zoom.classList.contains("zoomed") ? scale : 1;
    var ox = (parseFloat((frame.style.transformOrigin || "50% 50%").split(" ")[0]) || 50) / 100 * w;
    var oy = (parseFloat((frame.style.transformOrigin || "50% 50%").split(" ")[1]) || 50) / 100 * h;
    // Screen → unscaled frame coordinates: p = origin + (screen - (rect.left + origin*s)) / s
    var x = (ox + (e.clientX - (r.left + ox * s)) / s) / w;
    var y = (oy + (e.clientY - (r.top + oy * s)) / s) / h;
    if (x < 0 || x > 1 || y < 0 || y > 1) return;
    locked = false;
    zoomBoth(zoom, x, y);
  });

  document.addEventListener("mouseout", function (e) {
    var zoom = e.target.closest && e.target.closest(".rv-zoom");
    if (zoom && !(e.relatedTarget && zoom.contains(e.relatedTarget)) && !locked) unzoom();
  });

  document.addEventListener("wheel", function (e) {
    var zoom = e.target.closest && e.target.closest(".rv-zoom");
    if (!zoom || !zoom.classList.contains("zoomed")) return;
    e.preventDefault();
    scale = Math.max(1.5, Math.min(6, scale * (e.deltaY < 0 ? 1.15 : 1 / 1.15)));
    $all(".rv-zoom.zoomed").forEach(function (z) { z.style.setProperty("--rv-scale", scale); });
  }, { passive: false });

  function showThumb(thumb) {
    var side = thumb.closest(".rv-side");
    if (!side) return;
    var zoom = $(".rv-zoom", side), img = $(".rv-main", side), box = $(".rv-box", side);
    if (!img) return;
    img.src = thumb.getAttribute("data-src");
    var frame = $(".rv-frame", side);
    if (frame) frame.style.setProperty("--ar", (thumb.getAttribute("data-w") || 1) + "/" + (thumb.getAttribute("data-h") || 1));
    $all(".rv-thumb", side).forEach(function (b) { b.classList.toggle("active", b === thumb); });
    var bx = thumb.getAttribute("data-box");
    if (bx && box) {
      var v = bx.split(",");
      box.style.left = v[0] + "%"; box.style.top = v[1] + "%"; box.style.width = v[2] + "%"; box.style.height = v[3] + "%";
      box.hidden = false;
      zoom.setAttribute("data-rel", thumb.getAttribute("data-rel"));
    } else {
      if (box) box.hidden = true;
      zoom.removeAttribute("data-rel");
    }
  }

  // --- List view: selection ----------------------------------------------------------------------
  function initList() {
    var all = $("#rv-select-all");
    var count = $("#rv-selected-count");
    if (!all) return;
    function update() {
      var n = $all(".rv-select:checked").length;
      if (count) count.textContent = n + "건 선택";
    }
    all.addEventListener("change", function () {
      $all(".rv-select").forEach(function (c) { c.checked = all.checked; });
      update();
    });
    document.addEventListener("change", function (e) { if (e.target.classList.contains("rv-select")) update(); });
    update();
  }
})();
