// MathJax 3 settings, read by tex-mml-chtml.js, which loads after this file.
//
// Markdown pages: pymdownx.arithmatex puts every formula in an element of class
// "arithmatex" with \( \) or \[ \] delimiters, so MathJax reads those elements only
// and a stray "$" in prose stays a dollar sign.
// Notebook pages (mkdocs-jupyter, inside .jupyter-wrapper): Jupyter's markdown cells
// keep $...$ and $$...$$ and have no such class, so there MathJax reads the whole
// page; it still skips <pre> and <code>, so code and outputs are left alone.
// (processHtmlClass cannot do both: with everything else ignored, it would not
// reach the <p> and <li> inside a notebook cell.)  The hidden copy of each code cell
// kept for the copy button (.clipboard-copy-txt) is code, not text: ignored.
(function () {
  const notebook = document.querySelector(".jupyter-wrapper") !== null;
  window.MathJax = {
    tex: {
      inlineMath: notebook ? [["$", "$"], ["\\(", "\\)"]] : [["\\(", "\\)"]],
      displayMath: notebook ? [["$$", "$$"], ["\\[", "\\]"]] : [["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true,
    },
    options: notebook
      ? { ignoreHtmlClass: "tex2jax_ignore|clipboard-copy-txt" }
      : { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
  };
})();
