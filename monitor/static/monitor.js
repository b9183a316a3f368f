// Saga monitor: re-fetch every [data-live] fragment every few seconds, without a reload.
// The server answers 304 when a fragment did not change, so an idle page costs little.
(function () {
  "use strict";
  const period = Number(document.body.dataset.refreshMs) || 2000;
  const tags = new WeakMap();

  async function refresh(region) {
    const headers = {};
    const etag = tags.get(region);
    if (etag) headers["If-None-Match"] = etag;
    let response;
    try {
      response = await fetch(region.dataset.live, { headers, credentials: "same-origin" });
    } catch (error) {
      region.dataset.stale = "unreachable";
      return;
    }
    if (response.status === 304) return;
    if (!response.ok) {
      region.dataset.stale = String(response.status);
      return;
    }
    delete region.dataset.stale;
    tags.set(region, response.headers.get("ETag"));
    region.innerHTML = await response.text();
  }

  async function tick() {
    if (!document.hidden) {
      await Promise.all(Array.from(document.querySelectorAll("[data-live]"), refresh));
    }
    window.setTimeout(tick, period);
  }

  window.setTimeout(tick, period);
})();
