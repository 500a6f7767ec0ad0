// On an API page, a link to one object (#numclip.normalize.l2_normalize_backward)
// opens that object's "Source code" panel, so a derivation is one click from its code.
(function () {
  function openTargetSource() {
    const id = decodeURIComponent(window.location.hash.slice(1));
    const heading = id && document.getElementById(id);
    if (!heading || !heading.classList.contains("doc-heading")) return;
    const contents = heading.nextElementSibling;
    const source = contents && contents.querySelector(":scope > details.mkdocstrings-source");
    if (source) source.open = true;
  }
  window.addEventListener("hashchange", openTargetSource);
  openTargetSource();
})();
