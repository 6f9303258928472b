// Typeset the math of one built page with the book's bundled MathJax, in Node, with no network:
//   node mathjax_typeset.js <html>/_static/mathjax <page.html>
// prints {"typeset": formulas typeset, "errors": formulas MathJax could not parse}.
const fs = require('fs');
const [mathjax, page] = process.argv.slice(2);
global.MathJax = {
  loader: {paths: {mathjax: mathjax}, load: ['adaptors/liteDOM', 'input/tex-full', 'output/chtml'], require: require},
  options: {processHtmlClass: 'tex2jax_process|mathjax_process|math|output_area'},
  startup: {typeset: false},
};
require(mathjax + '/startup.js');
MathJax.startup.promise.then(() => {
  const adaptor = MathJax.startup.adaptor;
  const doc = MathJax.startup.getDocument(fs.readFileSync(page, 'utf8'));
  doc.render();
  const html = adaptor.outerHTML(adaptor.root(doc.document));
  console.log(JSON.stringify({typeset: Array.from(doc.math).length, errors: html.split('data-mjx-error').length - 1}));
}).catch(err => { console.error(err); process.exit(1); });
