// Name pickers: under an input with data-picker="residents|providers", the active people of the
// community whose name or code matches what is typed (POST /clerk/names, the CSRF token in a
// header, never a name in a URL). Choosing one puts its code in the input. Without this script
// the form works the same: names typed are resolved when it is submitted.
(function () {
  "use strict";
  var DELAY = 200;

  function communityOf(input) {
    var own = input.getAttribute("data-community");
    if (own) { return own; }
    var field = input.form && input.form.elements.namedItem("community");
    return field ? field.value : "";
  }

  function csrfOf(input) {
    var field = input.form && input.form.elements.namedItem("csrf");
    return field ? field.value : "";
  }

  function attach(input) {
    var list = document.createElement("ul");
    list.className = "picks";
    list.hidden = true;
    list.setAttribute("role", "listbox");
    input.insertAdjacentElement("afterend", list);
    var timer = null;
    var asked = 0;

    function clear() {
      while (list.firstChild) { list.removeChild(list.firstChild); }
      list.hidden = true;
    }

    function show(matches) {
      clear();
      matches.forEach(function (m) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = m.name + " (" + m.code + ")";
        button.setAttribute("data-code", m.code);
        button.addEventListener("click", function () {
          input.value = m.code;
          clear();
          input.focus();
        });
        item.appendChild(button);
        list.appendChild(item);
      });
      list.hidden = matches.length === 0;
    }

    function ask() {
      var text = input.value.trim();
      var community = communityOf(input);
      if (!text || !community) { clear(); return; }
      var mine = ++asked;
      fetch("/clerk/names", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfOf(input) },
        body: JSON.stringify({ community: community, who: input.getAttribute("data-picker"), text: text })
      }).then(function (r) { return r.ok ? r.json() : { matches: [] }; })
        .then(function (doc) { if (mine === asked) { show(doc.matches || []); } })
        .catch(clear);
    }

    input.addEventListener("input", function () {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(ask, DELAY);
    });
    input.addEventListener("keydown", function (e) { if (e.key === "Escape") { clear(); } });
  }

  Array.prototype.forEach.call(document.querySelectorAll("input[data-picker]"), attach);
})();
