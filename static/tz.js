// The admin console shows dates in the browser's time zone: its IANA name goes to the server in
// the lk_tz cookie (the server falls back to UTC without it). No inline script: CSP stays strict.
(function () {
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!tz || !/^[A-Za-z0-9_+\/-]{1,64}$/.test(tz)) return;
    var current = document.cookie.split('; ').filter(function (c) { return c.indexOf('lk_tz=') === 0; })[0];
    var value = tz;
    if (current === 'lk_tz=' + value) return;
    document.cookie = 'lk_tz=' + value + '; path=/admin; max-age=31536000; SameSite=Lax' + (location.protocol === 'https:' ? '; Secure' : '');
  } catch (e) { /* dates stay in UTC */ }
})();
