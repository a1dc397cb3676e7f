// Highlights bot sources (JavaScript and Python) in <pre><code class="language-…">. It only
// wraps tokens in spans built with textContent: the source stays text, never markup.
"use strict";

(() => {
  const KEYWORDS = {
    javascript: new Set(("break case catch class const continue default delete do else export " +
      "extends finally for function if in instanceof let new of return static super switch this " +
      "throw try typeof var void while yield async await null undefined true false").split(" ")),
    python: new Set(("and as assert async await break class continue def del elif else except " +
      "finally for from global if import in is lambda nonlocal not or pass raise return try " +
      "while with yield None True False self").split(" ")),
  };
  // One pattern per language: comments, strings, numbers, words, then any other character.
  const PATTERNS = {
    javascript: /(\/\/[^\n]*|\/\*[\s\S]*?\*\/)|("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_$][\w$]*)|([\s\S])/g,
    python: /(#[^\n]*)|("""[\s\S]*?"""|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|(\b\d+(?:\.\d+)?\b)|([A-Za-z_]\w*)|([\s\S])/g,
  };

  function highlight(element, language) {
    const source = element.textContent;
    const keywords = KEYWORDS[language];
    const pattern = PATTERNS[language];
    const fragment = document.createDocumentFragment();
    let plain = "";
    const flush = () => {
      if (plain) fragment.appendChild(document.createTextNode(plain));
      plain = "";
    };
    const span = (className, text) => {
      flush();
      const node = document.createElement("span");
      node.className = className;
      node.textContent = text;
      fragment.appendChild(node);
    };
    for (const match of source.matchAll(pattern)) {
      const [token, comment, string, number, word] = match;
      if (comment) span("hl-com", token);
      else if (string) span("hl-str", token);
      else if (number) span("hl-num", token);
      else if (word && keywords.has(word)) span("hl-kw", token);
      else plain += token;
    }
    flush();
    element.replaceChildren(fragment);
  }

  for (const element of document.querySelectorAll("pre code[class^='language-']")) {
    const language = element.className.replace("language-", "");
    if (PATTERNS[language]) highlight(element, language);
  }
})();
