// connectord status page: live refresh and confirmation prompts. The page works without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }

  const live = document.getElementById("live");
  if (!live) {
    return;
  }
  const key = "connectord.live";
  live.checked = window.localStorage.getItem(key) !== "off";
  live.addEventListener("change", () => {
    window.localStorage.setItem(key, live.checked ? "on" : "off");
  });
  window.setInterval(() => {
    // Never reload under someone's hands: open details or a focused control stay put.
    const busy = document.querySelector("details[open]") ||
      (document.activeElement && document.activeElement.tagName === "BUTTON");
    if (live.checked && !busy && document.visibilityState === "visible") {
      window.location.reload();
    }
  }, 10000);
});
