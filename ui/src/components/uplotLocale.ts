// uPlot makes an Intl.NumberFormat for navigator.language as it loads, and WebKitGTK under the
// C/POSIX locale (LANG=C.UTF-8, as on build machines and in containers) reports "C", which is no
// language tag: the RangeError would stop the whole UI from loading. Such a page reports the
// engine's default locale instead; imported by MonitoringCharts before uPlot for that reason.
function isLanguageTag(tag: string): boolean {
  try {
    new Intl.NumberFormat(tag);
    return true;
  } catch {
    return false;
  }
}

if (!isLanguageTag(navigator.language)) {
  Object.defineProperty(navigator, 'language', { value: new Intl.NumberFormat().resolvedOptions().locale, configurable: true });
}
