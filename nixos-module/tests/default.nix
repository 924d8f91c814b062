# Evaluation tests for services.picosnitch (../default.nix). Offline, with Nix 2.8 and
# the stand-in for nixpkgs in ./stand-in (scripts/nix-checks.sh):
#   nix-instantiate --read-write-mode --eval --strict --json nixos-module/tests -A results
# and against real nixpkgs as the flake check `module-eval` (./check.nix passes `env`).
# Each result is { name, pass, detail }. The rendered TOML is read back with
# builtins.fromTOML and compared with the keys of config.example.toml, and the unit is
# rendered (./render-unit.nix) and parsed line by line.
{
  # { lib; nixos.eval = modules: { config; options; failedAssertions; units; }; package; }
  env ? import ./stand-in,
}:
let
  inherit (env) lib nixos package;
  inherit (builtins)
    attrNames
    elem
    elemAt
    filter
    fromTOML
    head
    length
    match
    readFile
    tryEval
    ;

  module = ../default.nix;
  repo = ../..;
  inherit (import ./reading.nix { inherit repo; })
    hasSuffix
    words
    findAfter
    parseUnit
    wordSet
    exampleSchema
    unknownKeys
    ;

  enabled = {
    services.picosnitch = {
      enable = true;
      inherit package;
    };
  };
  evalWith = extra: nixos.eval ([ module enabled ] ++ lib.optional (extra != null) extra);

  # ------------------------------------------------------------------ reading results
  etcSource = r: r.config.environment.etc."picosnitch/config.toml".source;

  # The rendered file (before validation), as the validating build exposes it.
  checkedFile = r: (etcSource r).rendered;
  toml = r: fromTOML (readFile (checkedFile r));

  unitOf = r: parseUnit r.units.picosnitch;
  svc = r: (unitOf r).Service;

  # ------------------------------------------------------------------ test helpers
  # A throw inside one test marks that test failed instead of stopping the run;
  # scripts/nix-checks.sh re-evaluates a failed test by name to show the error.
  safe =
    v:
    let
      r = tryEval (builtins.deepSeq v v);
    in
    if r.success then r.value else { "<evaluation failed>" = true; };
  test = name: actual: expected: {
    inherit name expected;
    raw = actual;
    actual = safe actual;
  };
  fails = r: pattern: builtins.any (m: match pattern m != null) r.failedAssertions;
  evaluationFails = v: !(tryEval (builtins.deepSeq v v)).success;

  # ------------------------------------------------------------------ configurations
  defaults = evalWith null;
  disabled = nixos.eval [
    module
    { services.picosnitch.package = package; }
  ];

  full = evalWith {
    services.picosnitch = {
      remoteDatabase.passwordFile = "/run/secrets/picosnitch-db";
      virustotal.apiKeyFile = "/run/secrets/vt-key";
      settings = {
        database = {
          retention_days = 90;
          write_limit_seconds = 30;
          queue_limit = 5000; # freeform: not a typed option
          remote = {
            host = "db.example.internal";
            tls = "disable";
            table_prefix = "laptop_"; # freeform inside the typed table
          };
        };
        log = {
          ignore_ports = [ 53 123 ];
          ignore_domains = [ "example.com" ];
          ignore_ips = [ "10.0.0.0/8" ];
          ignore_sha256 = [ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" ];
          commands = false;
        };
        desktop = {
          user = "alice";
          notifications = false;
        };
        monitoring = {
          every_exe = true;
          reverse_dns = true; # freeform: rendered as given, judged by check-config
          reverse_dns_resolver = "127.0.0.53";
        };
      };
    };
  };

  withSettings = settings: evalWith { services.picosnitch.settings = settings; };
  withPicosnitch = cfg: evalWith { services.picosnitch = cfg; };
  storeSecret = "${builtins.storeDir}/00000000000000000000000000000000-secret";

  credentialsDir = "/run/credentials/picosnitch.service";
  expectedCapabilities = [
    "CAP_BPF"
    "CAP_CHOWN"
    "CAP_DAC_READ_SEARCH"
    "CAP_FOWNER"
    "CAP_KILL"
    "CAP_NET_ADMIN"
    "CAP_PERFMON"
    "CAP_SETGID"
    "CAP_SETPCAP"
    "CAP_SETUID"
    "CAP_SYS_ADMIN"
    "CAP_SYS_PTRACE"
    "CAP_SYS_RESOURCE"
  ];

  # The module without its disabledModules, to show the stand-in catches the clash with
  # nixpkgs' own services.picosnitch (a control for the test that it is disabled).
  moduleWithoutDisable = args: removeAttrs (import module args) [ "disabledModules" ];

  distUnit = parseUnit (readFile (repo + "/crates/picosnitch/dist/picosnitch.service"));
  # Keys allowed to differ between the NixOS unit and the distribution unit: the
  # binary's path, and the PATH/locale variables NixOS gives every service.
  keysThatMayDiffer = [
    "ExecStart"
    "Environment"
  ];
  serviceKeys = u: filter (k: !(elem k keysThatMayDiffer)) (attrNames u.Service);

  tests = [
    # --- defaults
    (test "defaults: no failed assertions" defaults.failedAssertions [ ])
    (test "defaults: rendered TOML" (toml defaults) {
      data = {
        owner = "picosnitch";
        group = "picosnitch";
      };
      database = {
        path = "/var/lib/picosnitch/picosnitch.db";
        retention_days = 30;
        write_limit_seconds = 10;
      };
      desktop = {
        user = "";
        notifications = true;
        notification_burst = 5;
        notification_interval_seconds = 10;
        notification_dedup_seconds = 3600;
        hash_timeout_seconds = 10;
      };
      log = {
        ignore_domains = [ ];
        ignore_ips = [ ];
        ignore_ports = [ ];
        ignore_sha256 = [ ];
      };
    })
    (test "defaults: every rendered key is in config.example.toml with the same type" (unknownKeys (toml defaults)) [ ])
    (test "defaults: typed defaults equal config.example.toml (except [data], which names the service user)"
      (
        let
          s = defaults.config.services.picosnitch.settings;
        in
        {
          inherit (s.database) path retention_days write_limit_seconds;
          inherit (s.log) ignore_ports ignore_domains ignore_ips ignore_sha256;
          inherit (s.desktop) user notifications notification_burst notification_interval_seconds notification_dedup_seconds hash_timeout_seconds;
        }
      )
      {
        inherit (exampleSchema.database) path retention_days write_limit_seconds;
        inherit (exampleSchema.log) ignore_ports ignore_domains ignore_ips ignore_sha256;
        inherit (exampleSchema.desktop) user notifications notification_burst notification_interval_seconds notification_dedup_seconds hash_timeout_seconds;
      }
    )
    (test "defaults: the validated file is what /etc/picosnitch/config.toml and ExecStart use"
      {
        execStart = (svc defaults).ExecStart;
        etcIsChecked = (etcSource defaults).name;
      }
      {
        execStart = [ "${package}/bin/picosnitch daemon --config ${etcSource defaults}" ];
        etcIsChecked = "picosnitch-config.toml";
      }
    )
    (test "defaults: the build runs the package's check-config on the rendered file"
      (
        let
          ws = words (etcSource defaults).buildCommand;
        in
        {
          binary = builtins.any (w: w == "${package}/bin/picosnitch") ws;
          file = findAfter "check-config" ws;
        }
      )
      {
        binary = true;
        file = toString (checkedFile defaults);
      }
    )
    (test "defaults: service type, writable state directory, runtime directory, journald identity"
      {
        inherit (svc defaults)
          Type
          NotifyAccess
          ReadWritePaths
          RuntimeDirectory
          RuntimeDirectoryMode
          SyslogIdentifier
          Restart
          ;
      }
      {
        Type = [ "notify" ];
        NotifyAccess = [ "main" ];
        ReadWritePaths = [ "/var/lib/picosnitch" ];
        RuntimeDirectory = [ "picosnitch" ];
        RuntimeDirectoryMode = [ "0750" ];
        SyslogIdentifier = [ "picosnitch" ];
        Restart = [ "on-failure" ];
      }
    )
    (test "defaults: hardening" {
      inherit (svc defaults)
        ProtectSystem
        ProtectHome
        PrivateTmp
        PrivateDevices
        NoNewPrivileges
        SystemCallArchitectures
        LockPersonality
        MemoryDenyWriteExecute
        ProtectClock
        ProtectHostname
        ProtectKernelLogs
        ProtectKernelModules
        ProtectKernelTunables
        ProtectControlGroups
        RestrictNamespaces
        RestrictRealtime
        RestrictSUIDSGID
        ;
      capabilities = wordSet (svc defaults).CapabilityBoundingSet;
      families = wordSet (svc defaults).RestrictAddressFamilies;
      procIsDefault = !((svc defaults) ? ProtectProc || (svc defaults) ? ProcSubset);
      noAmbient = !((svc defaults) ? AmbientCapabilities);
      runsAsRoot = !((svc defaults) ? User || (svc defaults) ? DynamicUser);
      syscalls = wordSet (svc defaults).SystemCallFilter;
    } {
      ProtectSystem = [ "strict" ];
      ProtectHome = [ "read-only" ];
      PrivateTmp = [ "false" ];
      PrivateDevices = [ "true" ];
      NoNewPrivileges = [ "true" ];
      SystemCallArchitectures = [ "native" ];
      LockPersonality = [ "true" ];
      MemoryDenyWriteExecute = [ "true" ];
      ProtectClock = [ "true" ];
      ProtectHostname = [ "true" ];
      ProtectKernelLogs = [ "true" ];
      ProtectKernelModules = [ "true" ];
      ProtectKernelTunables = [ "true" ];
      ProtectControlGroups = [ "true" ];
      RestrictNamespaces = [ "true" ];
      RestrictRealtime = [ "true" ];
      RestrictSUIDSGID = [ "true" ];
      capabilities = expectedCapabilities;
      families = [
        "AF_INET"
        "AF_INET6"
        "AF_NETLINK"
        "AF_UNIX"
      ];
      procIsDefault = true;
      noAmbient = true;
      runsAsRoot = true;
      syscalls = wordSet [
        "@system-service bpf perf_event_open fanotify_init fanotify_mark"
        "landlock_create_ruleset landlock_add_rule landlock_restrict_self seccomp"
      ];
    })
    (test "defaults: the state directory belongs to the service user, readable by its group"
      defaults.config.systemd.tmpfiles.rules
      [ "d /var/lib/picosnitch 0750 picosnitch picosnitch - -" ]
    )
    (test "database.path elsewhere moves the state directory with it"
      (
        let
          r = withSettings { database.path = "/srv/picosnitch/history.db"; };
        in
        {
          rules = r.config.systemd.tmpfiles.rules;
          inherit ((svc r)) ReadWritePaths;
        }
      )
      {
        rules = [ "d /srv/picosnitch 0750 picosnitch picosnitch - -" ];
        ReadWritePaths = [ "/srv/picosnitch" ];
      }
    )
    (test "assert: runtime_dir other than /run/picosnitch" (fails (withSettings {
      data.runtime_dir = "/run/elsewhere";
    }) ".*data.runtime_dir: the module provides /run/picosnitch.*") true)
    (test "defaults: no credentials without secret files" ((svc defaults) ? LoadCredential) false)
    (test "defaults: started at boot, before the network" {
      inherit (unitOf defaults) Install;
      inherit ((unitOf defaults).Unit) Wants Before;
    } {
      Install.WantedBy = [ "multi-user.target" ];
      Wants = [ "network-pre.target" ];
      Before = [ "network-pre.target" ];
    })
    (test "defaults: service user and group, CLI installed"
      {
        user = {
          inherit (defaults.config.users.users.picosnitch) isSystemUser group;
        };
        group = defaults.config.users.groups ? picosnitch;
        cli = elem package defaults.config.environment.systemPackages;
      }
      {
        user = {
          isSystemUser = true;
          group = "picosnitch";
        };
        group = true;
        cli = true;
      }
    )
    (test "defaults: nixpkgs' picosnitch 2.x module is disabled, ours declares the option"
      defaults.options.services.picosnitch.enable.declarations
      [ (toString module) ]
    )

    # --- disabled
    (test "disabled: nothing is added"
      {
        service = disabled.config.systemd.services ? picosnitch;
        user = disabled.config.users.users ? picosnitch;
        group = disabled.config.users.groups ? picosnitch;
        etc = disabled.config.environment.etc ? "picosnitch/config.toml";
        cli = elem package disabled.config.environment.systemPackages;
      }
      {
        service = false;
        user = false;
        group = false;
        etc = false;
        cli = false;
      }
    )

    # --- a full configuration
    (test "full: no failed assertions" full.failedAssertions [ ])
    (test "full: rendered TOML" (toml full) {
      data = {
        owner = "picosnitch";
        group = "picosnitch";
      };
      database = {
        path = "/var/lib/picosnitch/picosnitch.db";
        retention_days = 90;
        write_limit_seconds = 30;
        queue_limit = 5000;
        remote = {
          host = "db.example.internal";
          port = 5432;
          user = "picosnitch";
          database = "picosnitch";
          tls = "disable";
          table_prefix = "laptop_";
          password_file = "${credentialsDir}/remote-database-password";
        };
      };
      desktop = {
        user = "alice";
        notifications = false;
        notification_burst = 5;
        notification_interval_seconds = 10;
        notification_dedup_seconds = 3600;
        hash_timeout_seconds = 10;
      };
      log = {
        ignore_ports = [ 53 123 ];
        ignore_domains = [ "example.com" ];
        ignore_ips = [ "10.0.0.0/8" ];
        ignore_sha256 = [ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" ];
        commands = false;
      };
      monitoring = {
        every_exe = true;
        reverse_dns = true;
        reverse_dns_resolver = "127.0.0.53";
      };
      virustotal.api_key_file = "${credentialsDir}/virustotal-api-key";
    })
    (test "full: every rendered key is in config.example.toml with the same type" (unknownKeys (toml full)) [ ])
    (test "full: typed remote defaults equal config.example.toml's [database.remote]"
      {
        inherit (full.config.services.picosnitch.settings.database.remote) port user database;
      }
      {
        inherit (exampleSchema."database.remote") port user database;
      }
    )
    (test "full: secrets reach the daemon as systemd credentials" (svc full).LoadCredential [
      "remote-database-password:/run/secrets/picosnitch-db"
      "virustotal-api-key:/run/secrets/vt-key"
    ])
    (test "full: the secret files' own paths are not in the config" (
      let
        text = readFile (checkedFile full);
      in
      [
        (match ".*/run/secrets.*" text)
      ]
    ) [ null ])
    (test "full: a settings change gives a new ExecStart (restart on switch)" (
      (svc full).ExecStart != (svc defaults).ExecStart
    ) true)

    # --- checkConfig off: the rendered file is used directly
    (test "checkConfig = false: no validation step"
      (
        let
          r = withPicosnitch { checkConfig = false; };
        in
        {
          execStartUsesEtcFile = toString (etcSource r) == elemAt (words (head (svc r).ExecStart)) 3;
          etcIsTheRenderedFile = hasSuffix "-picosnitch.toml" (toString (etcSource r));
        }
      )
      {
        execStartUsesEtcFile = true;
        etcIsTheRenderedFile = true;
      }
    )

    # --- user overrides of the unit still work
    (test "mkForce on a serviceConfig key wins"
      (svc (evalWith { systemd.services.picosnitch.serviceConfig.TimeoutStartSec = lib.mkForce 300; })).TimeoutStartSec
      [ "300" ]
    )
    (test "a plain conflicting serviceConfig definition is an error" (evaluationFails (
      svc (evalWith { systemd.services.picosnitch.serviceConfig.Type = "simple"; })
    )) true)

    # --- assertions that reject bad settings (what nixos-rebuild would print)
    (test "assert: desktop user root" (fails (withSettings { desktop.user = "root"; }) ".*desktop.user: notifications are never sent as root.*") true)
    (test "assert: desktop user uid 0" (fails (withSettings { desktop.user = "0"; }) ".*desktop.user: notifications are never sent as root.*") true)
    (test "assert: remote database without host" (fails (withSettings { database.remote = { }; }) ".*database.remote: set host.*") true)
    (test "assert: password file without remote database" (fails (withPicosnitch {
      remoteDatabase.passwordFile = "/run/secrets/x";
    }) ".*passwordFile is set but settings.database.remote is not.*") true)
    (test "assert: password file in the store" (fails (withPicosnitch {
      remoteDatabase.passwordFile = storeSecret;
      settings.database.remote.host = "db";
    }) ".*remoteDatabase.passwordFile points into the Nix store.*") true)
    (test "assert: two password sources" (fails (withPicosnitch {
      remoteDatabase.passwordFile = "/run/secrets/x";
      settings.database.remote = {
        host = "db";
        password_file = "/etc/pw";
      };
    }) ".*either with remoteDatabase.passwordFile or with settings.database.remote.password_file.*") true)
    (test "assert: settings password_file in the store" (fails (withSettings {
      database.remote = {
        host = "db";
        password_file = storeSecret;
      };
    }) ".*remote.password_file points into the Nix store.*") true)
    (test "assert: inline VirusTotal key" (fails (withSettings { virustotal.api_key = "secret"; }) ".*api_key would put the key into the world-readable Nix store.*") true)
    (test "assert: VirusTotal key file in the store" (fails (withPicosnitch { virustotal.apiKeyFile = storeSecret; }) ".*apiKeyFile points into the Nix store.*") true)
    (test "assert: each bad setting trips only its own assertion" (length (withSettings { desktop.user = "root"; }).failedAssertions) 1)

    # --- type errors (evaluation fails; scripts/nix-checks.sh also checks the messages)
    (test "type: secret file given as a Nix path is refused (it would be copied to the store)" (evaluationFails (
      toml (withPicosnitch { remoteDatabase.passwordFile = ./default.nix; settings.database.remote.host = "db"; })
    )) true)
    (test "type: write_limit_seconds 0" (evaluationFails (toml (withSettings { database.write_limit_seconds = 0; }))) true)
    (test "type: retention_days negative" (evaluationFails (toml (withSettings { database.retention_days = -1; }))) true)
    (test "type: ignore_ports out of range" (evaluationFails (toml (withSettings { log.ignore_ports = [ 70000 ]; }))) true)
    (test "type: ignore_sha256 not lowercase hex" (evaluationFails (toml (withSettings { log.ignore_sha256 = [ "ABC" ]; }))) true)
    (test "type: tls mode not known" (evaluationFails (toml (withSettings { database.remote = { host = "db"; tls = "prefer"; }; }))) true)
    (test "type: notifications not a bool" (evaluationFails (toml (withSettings { desktop.notifications = "yes"; }))) true)
    (test "null in settings means absent (TOML has no null), not an error"
      (toml (withSettings {
        monitoring = {
          rlimit_nofile = null;
          every_exe = true;
        };
      })).monitoring
      { every_exe = true; }
    )

    # --- controls: the stand-in rejects what real nixpkgs rejects
    (test "control: an option that does not exist is an error" (evaluationFails (
      (evalWith { services.picosnitch.no_such_option = true; }).config.services.picosnitch
    )) true)
    (test "control: a misspelt systemd option is an error" (evaluationFails (
      (evalWith { systemd.services.picosnitch.serviceconfig.Type = "simple"; }).units
    )) true)
    (test "control: without disabledModules the option clashes with nixpkgs' picosnitch module" (evaluationFails (
      (nixos.eval [ moduleWithoutDisable enabled ]).config.services.picosnitch.enable
    )) true)

    # --- the unit for other distributions carries the same hardening
    (test "dist unit: same [Service] settings as the NixOS unit (ExecStart aside)"
      (map (k: {
        key = k;
        words = wordSet distUnit.Service.${k};
      }) (serviceKeys distUnit))
      (map (k: {
        key = k;
        words = wordSet (svc defaults).${k};
      }) (serviceKeys (unitOf defaults)))
    )
    (test "dist unit: runs the daemon with the default config" (
      match "/usr/bin/picosnitch daemon" (head distUnit.Service.ExecStart) != null
    ) true)
    (test "dist unit: same [Unit] ordering and [Install]" {
      inherit (distUnit.Unit) Wants Before;
      inherit (distUnit) Install;
    } {
      inherit ((unitOf defaults).Unit) Wants Before;
      inherit (unitOf defaults) Install;
    })
  ];
in
{
  inherit exampleSchema;

  # For scripts/nix-checks.sh.
  results = map (t: {
    inherit (t) name;
    pass = t.actual == t.expected;
    detail =
      if t.actual == t.expected then
        ""
      else
        "expected ${builtins.toJSON t.expected}\n     got ${builtins.toJSON t.actual}";
  }) tests;

  # Rendered config files for `picosnitch check-config` when a built binary is at hand:
  # the first two must be accepted, `unknownKey` (a typo the freeform settings let
  # through) refused.
  configFiles = {
    defaults = toString (checkedFile defaults);
    full = toString (checkedFile full);
    unknownKey = toString (checkedFile (withSettings { database.retention_dayz = 3; }));
  };

  # Unit files for `systemd-analyze security --offline=true`.
  units = {
    defaults = defaults.units.picosnitch;
    full = full.units.picosnitch;
  };

  # Re-evaluates test number i (0-based) without catching its error, to show it.
  rerun = i: let t = elemAt tests i; in builtins.deepSeq t.raw t.raw;

  # Configurations whose evaluation must fail with a message naming the problem (what
  # `nixos-rebuild` prints); scripts/nix-checks.sh evaluates each `value` and greps
  # the error for `expect` (an extended regular expression).
  failureCases = {
    secret-file-as-nix-path = {
      expect = "option .services[.]picosnitch[.]remoteDatabase[.]passwordFile' is not of type";
      value = toml (withPicosnitch {
        remoteDatabase.passwordFile = ./default.nix;
        settings.database.remote.host = "db";
      });
    };
    write-limit-out-of-range = {
      expect = "option .services[.]picosnitch[.]settings[.]database[.]write_limit_seconds' is not of type .integer between 1 and 3600";
      value = toml (withSettings { database.write_limit_seconds = 0; });
    };
    port-out-of-range = {
      expect = "option .services[.]picosnitch[.]settings[.]log[.]ignore_ports[.].*is not of type";
      value = toml (withSettings { log.ignore_ports = [ 70000 ]; });
    };
    unknown-tls-mode = {
      expect = "option .services[.]picosnitch[.]settings[.]database[.]remote[.]tls' is not of type .one of";
      value = toml (withSettings {
        database.remote = {
          host = "db";
          tls = "prefer";
        };
      });
    };
    misspelt-option = {
      expect = "option .services[.]picosnitch[.]setings' does not exist";
      value = (evalWith { services.picosnitch.setings.database.retention_days = 1; }).config.services.picosnitch;
    };
  };
}
