// AuthGPTs page behaviour. No inline scripts: the CSP allows only files from /static.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="#target-id"> copies the target's value or text.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var target = document.querySelector(btn.getAttribute("data-copy"));
    if (!target) return;
    var text = target.value !== undefined ? target.value : target.textContent;
    navigator.clipboard.writeText(text.trim()).then(function () {
      var label = btn.getAttribute("data-copy-label") || btn.textContent;
      btn.setAttribute("data-copy-label", label);
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = label; }, 1500);
    });
  });

  // Confirmation for destructive buttons: <button data-confirm="Revoke access?">.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-confirm]");
    if (btn && !window.confirm(btn.getAttribute("data-confirm"))) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    }
  }, true);

  // Portal errors from htmx requests arrive as {"detail":{"message","hint"}}: show a toast.
  function toast(message, hint) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.setAttribute("role", "alert");
    el.className = "pointer-events-auto rounded-lg bg-red-600 px-4 py-3 text-sm text-white shadow-lg";
    var strong = document.createElement("p");
    strong.className = "font-medium";
    strong.textContent = message;
    el.appendChild(strong);
    if (hint) {
      var p = document.createElement("p");
      p.className = "mt-1 text-red-100";
      p.textContent = hint;
      el.appendChild(p);
    }
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }
  document.addEventListener("htmx:responseError", function (ev) {
    var xhr = ev.detail.xhr;
    try {
      var d = JSON.parse(xhr.responseText).detail;
      toast(d.message, d.hint);
    } catch (e) {
      toast("Something went wrong (" + xhr.status + ").", "Reload the page and try again.");
    }
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The server could not be reached.", "Check your connection and try again.");
  });

  // Connections: <a data-connect-popup href="/connections/…/start?…"> opens the connect
  // flow in a popup when the browser allows one (else the link navigates as usual). The
  // popup's last page posts its result to this window, at our own origin only, and
  // closes; this page then reloads to show the linked account.
  var connectPopup = null;
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest("a[data-connect-popup]");
    if (!a || ev.defaultPrevented || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    var url = new URL(a.href, window.location.href);
    url.searchParams.set("mode", "popup");
    connectPopup = window.open(url.toString(), "authgpts-connect", "popup,width=520,height=720");
    if (connectPopup) ev.preventDefault();
  });
  window.addEventListener("message", function (ev) {
    if (ev.origin !== window.location.origin || !connectPopup || ev.source !== connectPopup) return;
    var d = ev.data || {};
    if (d.type !== "authgpts:connection") return;
    connectPopup = null;
    if (d.status === "connected") {
      window.location.reload();
    } else {
      toast("The account was not connected.", "Try again, and allow access at the provider.");
    }
  });
  function reportConnection() {
    var el = document.querySelector("[data-connection-result]");
    if (!el || !window.opener) return;
    window.opener.postMessage({
      type: "authgpts:connection",
      status: el.getAttribute("data-status"),
      provider: el.getAttribute("data-provider")
    }, el.getAttribute("data-origin"));
    window.close();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", reportConnection);
  } else {
    reportConnection();
  }
})();
