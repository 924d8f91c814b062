# Reading what the module produced: words of a build script, unit files, and
# config.example.toml as a schema of known keys. Plain functions over text, used by
# ./default.nix.
{ repo }:
let
  inherit (builtins)
    attrNames
    concatMap
    elemAt
    filter
    foldl'
    fromTOML
    head
    isAttrs
    isString
    length
    match
    readFile
    split
    typeOf
    ;
in
rec {
  hasSuffix =
    suffix: s:
    let
      n = builtins.stringLength s;
      m = builtins.stringLength suffix;
    in
    n >= m && builtins.substring (n - m) m s == suffix;

  words = s: filter (w: isString w && w != "") (split "[ \n;]+" s);
  # The word after `w` in a list of words.
  findAfter =
    w: ws:
    if length ws < 2 then
      throw "no `${w} FILE' in the build script"
    else if head ws == w then
      elemAt ws 1
    else
      findAfter w (builtins.tail ws);

  # Unit text -> { Section = { Key = [ value-per-line ]; }; }; comments and blank lines skipped.
  parseUnit =
    text:
    let
      lines = filter (l: isString l && l != "" && match "[#;].*" l == null) (split "\n" text);
      step =
        acc: line:
        let
          header = match "[[]([A-Za-z]+)[]]" line;
          kv = match "([A-Za-z]+)=(.*)" line;
          sec = acc.sections.${acc.section} or { };
        in
        if header != null then
          acc // { section = head header; }
        else if kv != null then
          acc
          // {
            sections = acc.sections // {
              ${acc.section} = sec // {
                ${elemAt kv 0} = (sec.${elemAt kv 0} or [ ]) ++ [ (elemAt kv 1) ];
              };
            };
          }
        else
          throw "unit line is neither [Section] nor Key=value: ${line}";
    in
    (foldl' step {
      section = "none";
      sections = { };
    } lines).sections;
  # Whitespace-separated words of every line of a key, sorted: how systemd merges
  # list settings such as CapabilityBoundingSet= given on one line or on many.
  wordSet = lines: builtins.sort builtins.lessThan (concatMap words lines);

  # { "database" = { key = example value; }; "database.remote" = { ... }; ... }, the
  # commented-out optional keys included (as crates/picosnitch-config's test reads it).
  exampleSchema =
    let
      lines = filter isString (split "\n" (readFile (repo + "/config.example.toml")));
      step =
        acc: line:
        let
          header = match "(# )?[[]([a-z_.]+)[]]" line;
          kv = match "(# )?([a-z][a-z0-9_]*) = (.*)" line;
        in
        if header != null then
          acc // { section = elemAt header 1; }
        else if kv != null then
          acc
          // {
            schema = acc.schema // {
              ${acc.section} = (acc.schema.${acc.section} or { }) // {
                ${elemAt kv 1} = (fromTOML "v = ${elemAt kv 2}").v;
              };
            };
          }
        else
          acc;
    in
    (foldl' step {
      section = "";
      schema = { };
    } lines).schema;

  # Every key of a rendered config, as [ { section; key; value; } ].
  flatten =
    section: as:
    concatMap (
      k:
      let
        v = as.${k};
        sub = if section == "" then k else "${section}.${k}";
      in
      if isAttrs v then flatten sub v else [ { inherit section k v; } ]
    ) (attrNames as);
  unknownKeys =
    rendered:
    map (e: "${e.section}.${e.k}") (
      filter (
        e:
        !(exampleSchema ? ${e.section} && exampleSchema.${e.section} ? ${e.k})
        || typeOf exampleSchema.${e.section}.${e.k} != typeOf e.v
      ) (flatten "" rendered)
    );

}
