# A stand-in for the part of nixpkgs' `lib` that ../../default.nix uses, for the
# offline evaluation tests (nixpkgs cannot be fetched where they run).
#
# Same names, same meaning, far less code. What it keeps of the real module system,
# because the tests rely on it to fail when the module is wrong:
#   - an undeclared option is an error ("does not exist"), unless a freeformType takes it;
#   - an option declared twice is an error (hence the module's disabledModules);
#   - every definition is type-checked; a wrong type is an error (`throw`, so that
#     builtins.tryEval sees it);
#   - mkIf / mkMerge / mkOverride (mkDefault, mkForce) with nixpkgs' priorities, and
#     mkIf pushed into attribute sets without forcing its condition (so a module may
#     read its own config);
#   - submodules with freeformType take undeclared nested keys (RFC 42 settings);
#   - defaults are definitions with the lowest priority.
# Left out: option documentation, _module.args, apply, readOnly, mkOrder, mkRenamed*,
# type merging of repeated submodule declarations, and error positions.
let
  inherit (builtins)
    all
    any
    attrNames
    concatLists
    concatMap
    concatStringsSep
    elem
    filter
    foldl'
    head
    isAttrs
    isBool
    isFunction
    isInt
    isFloat
    isList
    isPath
    isString
    length
    listToAttrs
    mapAttrs
    match
    substring
    tail
    toJSON
    typeOf
    zipAttrsWith
    ;

  # ---------------------------------------------------------------- plain helpers
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalAttrs = cond: as: if cond then as else { };
  optionalString = cond: s: if cond then s else "";
  hasPrefix = pre: s: substring 0 (builtins.stringLength pre) s == pre;
  nameValuePair = name: value: { inherit name value; };
  mapAttrsToList = f: as: map (n: f n as.${n}) (attrNames as);
  concatMapStrings = f: xs: builtins.concatStringsSep "" (map f xs);
  isDerivation = x: isAttrs x && (x.type or null) == "derivation";
  isStringLike = x: isString x || isPath x || (isAttrs x && x ? outPath);

  filterAttrsRecursive =
    pred: set:
    listToAttrs (
      concatMap (
        name:
        let
          v = set.${name};
        in
        if pred name v then
          [ (nameValuePair name (if isAttrs v then filterAttrsRecursive pred v else v)) ]
        else
          [ ]
      ) (attrNames set)
    );

  # nixpkgs: recurse where both sides are attribute sets (not derivations), else rhs wins.
  recursiveUpdate =
    lhs: rhs:
    zipAttrsWith (
      n: vs:
      if length vs == 1 then
        head vs
      else if isAttrs (head vs) && isAttrs (elemAt1 vs) && !isDerivation (head vs) && !isDerivation (elemAt1 vs) then
        recursiveUpdate (head vs) (elemAt1 vs)
      else
        elemAt1 vs
    ) [ lhs rhs ];
  elemAt1 = xs: builtins.elemAt xs 1;

  showOption = loc: concatStringsSep "." loc;

  # Enough of a value to recognise it in an error message.
  showValue =
    v:
    if isString v || isInt v || isBool v || v == null || isFloat v then
      toJSON v
    else if isPath v then
      toString v
    else if isList v then
      "[ ${concatStringsSep " " (map showValue v)} ]"
    else if isDerivation v then
      "<derivation ${v.name or "?"}>"
    else if isAttrs v then
      "{ ${concatStringsSep " " (mapAttrsToList (n: x: "${n} = ${showValue x};") v)} }"
    else
      "<${typeOf v}>";
  showDefs = defs: concatMapStrings (d: "\n- In `${d.file}': ${showValue d.value}") defs;

  # ---------------------------------------------------------------- options and properties
  mkOption = attrs: attrs // { _type = "option"; };
  isOption = x: isAttrs x && (x._type or null) == "option";
  mkEnableOption =
    name:
    mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };
  literalExpression = text: {
    _type = "literalExpression";
    inherit text;
  };

  mkIf = condition: content: {
    _type = "if";
    inherit condition content;
  };
  mkMerge = contents: {
    _type = "merge";
    inherit contents;
  };
  mkOverride = priority: content: {
    _type = "override";
    inherit priority content;
  };
  mkOptionDefault = mkOverride 1500;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  defaultPriority = 100;

  # mkIf/mkMerge/mkOverride around an attribute set move into its attributes, so the
  # set's names are known without evaluating any condition.
  pushDownProperties =
    cfg:
    if (cfg._type or "") == "merge" then
      concatMap pushDownProperties cfg.contents
    else if (cfg._type or "") == "if" then
      map (mapAttrs (_: v: mkIf cfg.condition v)) (pushDownProperties cfg.content)
    else if (cfg._type or "") == "override" then
      map (mapAttrs (_: v: mkOverride cfg.priority v)) (pushDownProperties cfg.content)
    else
      [ cfg ];

  dischargeProperties =
    def:
    if (def._type or "") == "merge" then
      concatMap dischargeProperties def.contents
    else if (def._type or "") == "if" then
      if isBool def.condition then
        (if def.condition then dischargeProperties def.content else [ ])
      else
        throw "mkIf called with a non-Boolean condition"
    else
      [ def ];

  filterOverrides =
    defs:
    let
      prio = def: if (def.value._type or "") == "override" then def.value.priority else defaultPriority;
      highest = foldl' (p: def: if prio def < p then prio def else p) 9999 defs;
      strip = def: if (def.value._type or "") == "override" then def // { value = def.value.content; } else def;
    in
    concatMap (def: if prio def == highest then [ (strip def) ] else [ ]) defs;

  # Definitions of one option -> its value: properties, priorities, type check, merge.
  mergeDefinitions =
    loc: type: defs:
    let
      discharged = concatMap (d: map (value: d // { inherit value; }) (dischargeProperties d.value)) defs;
      final = filterOverrides discharged;
      invalid = filter (d: !type.check d.value) final;
    in
    if final == [ ] then
      throw "The option `${showOption loc}' is used but not defined."
    else if invalid != [ ] then
      throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:${showDefs invalid}"
    else
      type.merge loc final;

  mergeEqualOption =
    loc: defs:
    let
      first = head defs;
    in
    if all (d: d.value == first.value) defs then
      first.value
    else
      throw "The option `${showOption loc}' has conflicting definition values:${showDefs defs}";

  mergeOneOption =
    loc: defs:
    if length defs == 1 then
      (head defs).value
    else
      throw "The unique option `${showOption loc}' is defined multiple times. Definition values:${showDefs defs}";

  # ---------------------------------------------------------------- types
  mkOptionType =
    {
      name,
      description ? name,
      check ? (_: true),
      merge ? mergeEqualOption,
    }:
    {
      _type = "option-type";
      inherit
        name
        description
        check
        merge
        ;
    };

  addCheck = t: extra: t // { check = x: t.check x && extra x; };

  either =
    a: b:
    mkOptionType {
      name = "either";
      description = "${a.description} or ${b.description}";
      check = x: a.check x || b.check x;
      merge =
        loc: defs:
        let
          values = map (d: d.value) defs;
        in
        if all a.check values then
          a.merge loc defs
        else if all b.check values then
          b.merge loc defs
        else
          mergeOneOption loc defs;
    };

  types = rec {
    bool = mkOptionType {
      name = "bool";
      description = "boolean";
      check = isBool;
    };
    str = mkOptionType {
      name = "str";
      description = "string";
      check = isString;
    };
    int = mkOptionType {
      name = "int";
      description = "signed integer";
      check = isInt;
    };
    float = mkOptionType {
      name = "float";
      description = "floating point number";
      check = isFloat;
    };
    ints = {
      between =
        lo: hi:
        addCheck int (x: x >= lo && x <= hi) // { description = "integer between ${toString lo} and ${toString hi} (both inclusive)"; };
      unsigned = addCheck int (x: x >= 0) // { description = "unsigned integer, meaning >=0"; };
      u16 = ints.between 0 65535;
    };
    port = ints.u16 // { description = "16 bit unsigned integer; between 0 and 65535 (both inclusive)"; };
    path = mkOptionType {
      name = "path";
      description = "path";
      check = x: isStringLike x && substring 0 1 (toString x) == "/";
    };
    package = mkOptionType {
      name = "package";
      description = "package";
      check = x: isDerivation x || (isString x && hasPrefix "${builtins.storeDir}/" x);
      merge = mergeOneOption;
    };
    unspecified = mkOptionType { name = "unspecified"; };
    enum =
      values:
      mkOptionType {
        name = "enum";
        description = "one of ${concatStringsSep ", " (map toJSON values)}";
        check = x: elem x values;
      };
    strMatching =
      pattern:
      mkOptionType {
        name = "strMatching ${toJSON pattern}";
        description = "string matching the pattern ${pattern}";
        check = x: isString x && match pattern x != null;
      };
    nullOr =
      t:
      mkOptionType {
        name = "nullOr";
        description = "null or ${t.description}";
        check = x: x == null || t.check x;
        merge =
          loc: defs:
          let
            nulls = filter (d: d.value == null) defs;
          in
          if nulls == defs then
            null
          else if nulls != [ ] then
            throw "The option `${showOption loc}' is defined both null and not null, in ${concatStringsSep ", " (map (d: d.file) defs)}."
          else
            t.merge loc defs;
      };
    listOf =
      t:
      mkOptionType {
        name = "listOf";
        description = "list of ${t.description}";
        check = isList;
        merge =
          loc: defs:
          concatLists (
            map (
              d:
              map (v: mergeDefinitions (loc ++ [ "[entry]" ]) t [ (d // { value = v; }) ]) (
                concatMap dischargeProperties d.value
              )
            ) defs
          );
      };
    attrsOf =
      t:
      mkOptionType {
        name = "attrsOf";
        description = "attribute set of ${t.description}";
        check = isAttrs;
        merge =
          loc: defs:
          let
            pushed = concatMap (d: map (value: d // { inherit value; }) (pushDownProperties d.value)) defs;
            byName = zipAttrsWith (_: ds: ds) (map (d: mapAttrs (_: v: d // { value = v; }) d.value) pushed);
            merged = mapAttrs (n: ds: {
              defined = filterOverrides (concatMap (d: map (value: d // { inherit value; }) (dischargeProperties d.value)) ds) != [ ];
              value = mergeDefinitions (loc ++ [ n ]) t ds;
            }) byName;
          in
          mapAttrs (_: m: m.value) (lib.filterAttrs (_: m: m.defined) merged);
      };
    oneOf = ts: foldl' either (head ts) (tail ts);
    inherit either;
    submodule =
      module:
      mkOptionType {
        name = "submodule";
        description = "submodule";
        check = x: isAttrs x || isFunction x;
        merge =
          loc: defs:
          (evalModules {
            prefix = loc;
            modules = [ module ] ++ map (
              d:
              if isFunction d.value then
                d.value
              else
                {
                  _file = d.file;
                  config = d.value;
                }
            ) defs;
          }).config;
      };
  };

  # ---------------------------------------------------------------- evalModules
  structuredKeys = [
    "_file"
    "key"
    "imports"
    "options"
    "config"
    "disabledModules"
    "freeformType"
    "meta"
  ];

  # Module syntax -> { key, file, imports, disabledModules, options, config, freeformType }.
  normalize =
    file: key: m:
    let
      structured = m ? options || m ? config;
      unsupported = filter (n: !(elem n structuredKeys)) (attrNames m);
    in
    if structured && unsupported != [ ] then
      throw "Module `${file}' has an unsupported attribute `${head unsupported}'. Put it under `config' or `options'."
    else
      {
        file = m._file or file;
        key = m.key or key;
        imports = m.imports or [ ];
        disabledModules = m.disabledModules or [ ];
        options = m.options or { };
        freeformType = m.freeformType or null;
        config =
          if structured then
            m.config or { }
          else
            removeAttrs m [
              "_file"
              "key"
              "imports"
              "disabledModules"
              "freeformType"
              "meta"
            ];
      };

  evalModules =
    {
      modules,
      prefix ? [ ],
      specialArgs ? { },
    }:
    let
      modulesPath = specialArgs.modulesPath or "/stand-in/nixos/modules";
      args = specialArgs // {
        inherit lib config;
        options = declarations;
      };

      load =
        parentFile: index: m:
        let
          fromPath = isPath m || isString m;
          file = if fromPath then toString m else "${parentFile}, via modules[${toString index}]";
          value = if fromPath then import m else m;
          applied = if isFunction value then value args else value;
        in
        normalize file (if fromPath then toString m else file) applied;

      collect =
        parentFile: ms:
        concatLists (
          builtins.genList (
            i:
            let
              m = load parentFile i (builtins.elemAt ms i);
            in
            [ m ] ++ collect m.file m.imports
          ) (length ms)
        );

      all' = collect "<evalModules ${showOption prefix}>" modules;
      disabledKeys = concatMap (
        m: map (d: if isString d && substring 0 1 d != "/" then "${modulesPath}/${d}" else toString d) m.disabledModules
      ) all';
      active = filter (m: !(elem m.key disabledKeys)) all';

      # Declarations of every module merged into one tree; a second declaration of
      # the same option is an error, as in nixpkgs.
      mergeDecls =
        loc: a: b:
        zipAttrsWith (
          n: vs:
          let
            here = loc ++ [ n ];
            x = head vs;
            y = elemAt1 vs;
          in
          if length vs == 1 then
            x
          else if isOption x.decl || isOption y.decl then
            throw "The option `${showOption here}' in `${y.file}' is already declared in `${x.file}'."
          else
            {
              file = x.file;
              decl = mergeDecls here x.decl y.decl;
            }
        ) [ a b ];
      # Annotated tree: name -> { file; decl } where decl is an option or a subtree.
      annotateTree =
        file: tree:
        mapAttrs (
          _: d: {
            inherit file;
            decl = if isOption d then d else annotateTree file d;
          }
        ) tree;
      stripTree = t: mapAttrs (_: x: if isOption x.decl then x.decl // { declarations = [ x.file ]; } else stripTree x.decl) t;
      declTree = foldl' (acc: m: mergeDecls prefix acc (annotateTree m.file m.options)) { } active;
      declarations = stripTree declTree;

      freeformTypes = filter (t: t != null) (map (m: m.freeformType) active);
      freeformType = if freeformTypes == [ ] then null else head freeformTypes;

      configDefs = map (m: {
        inherit (m) file;
        value = m.config;
      }) active;

      # One level of the option tree: declared names get their definitions, the
      # rest are returned as unmatched (with their path below this level).
      evalLevel =
        loc: decls: defs:
        let
          pushed = concatMap (d: map (value: d // { inherit value; }) (pushDownProperties d.value)) defs;
          nonSets = filter (d: !isAttrs d.value || (d.value._type or null) != null) pushed;
          defsFor = n: concatMap (d: optional (d.value ? ${n}) (d // { value = d.value.${n}; })) pushed;
          definedNames = attrNames (foldl' (acc: d: acc // d.value) { } pushed);
          evalName =
            n:
            let
              opt = decls.${n};
              here = loc ++ [ n ];
            in
            if isOption opt then
              {
                value = mergeDefinitions here opt.type (
                  optional (opt ? default) {
                    file = head opt.declarations;
                    value = mkOptionDefault opt.default;
                  }
                  ++ defsFor n
                );
                unmatched = [ ];
              }
            else
              let
                sub = evalLevel here opt (defsFor n);
              in
              {
                value = sub.config;
                unmatched = map (u: u // { path = [ n ] ++ u.path; }) sub.unmatched;
              };
          results = mapAttrs (n: _: evalName n) decls;
        in
        if nonSets != [ ] then
          throw "The option set `${showOption loc}' was given a value that is not an attribute set:${showDefs nonSets}"
        else
          {
            config = mapAttrs (_: r: r.value) results;
            unmatched =
              concatMap (n: map (d: { inherit (d) file value; path = [ n ]; }) (defsFor n)) (
                filter (n: !(decls ? ${n})) definedNames
              )
              ++ concatMap (n: results.${n}.unmatched) (filter (n: decls ? ${n} && !isOption decls.${n}) definedNames);
          };

      top = evalLevel prefix declarations configDefs;
      setAtPath = path: value: if path == [ ] then value else { ${head path} = setAtPath (tail path) value; };

      config =
        if freeformType == null then
          (
            if top.unmatched == [ ] then
              top.config
            else
              let
                u = head top.unmatched;
              in
              throw "The option `${showOption (prefix ++ u.path)}' does not exist. Definition values:${showDefs [ u ]}"
          )
        else
          recursiveUpdate (
            if top.unmatched == [ ] then
              { }
            else
              freeformType.merge prefix (map (u: { inherit (u) file; value = setAtPath u.path u.value; }) top.unmatched)
          ) top.config;
    in
    {
      inherit config;
      options = declarations;
    };

  lib = {
    inherit
      optional
      optionals
      optionalAttrs
      optionalString
      hasPrefix
      nameValuePair
      mapAttrsToList
      concatMapStrings
      concatStringsSep
      isDerivation
      filterAttrsRecursive
      recursiveUpdate
      showOption
      mkOption
      isOption
      mkEnableOption
      literalExpression
      mkIf
      mkMerge
      mkOverride
      mkOptionDefault
      mkDefault
      mkForce
      mkOptionType
      mergeEqualOption
      mergeOneOption
      types
      evalModules
      ;
    filterAttrs = pred: as: listToAttrs (concatMap (n: optional (pred n as.${n}) (nameValuePair n as.${n})) (attrNames as));
  };
in
lib
