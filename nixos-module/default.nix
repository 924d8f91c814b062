# services.picosnitch: the picosnitch daemon as a hardened systemd service.
#
# The daemon's configuration is rendered from `settings` into TOML and checked by
# `picosnitch check-config` while the system is built, so a bad setting fails
# `nixos-rebuild`, not the boot. Written against the nixpkgs (nixos-25.05) module API;
# the offline tests in ./tests evaluate it against a small stand-in for that API.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;

  cfg = config.services.picosnitch;
  settingsFormat = pkgs.formats.toml { };

  # systemd copies each LoadCredential= file here (root-only, on a non-swappable
  # ramfs) before the daemon starts; the config points at these copies so that the
  # secret files themselves are never read by Nix and never reach the store.
  credentialsDir = "/run/credentials/picosnitch.service";
  remotePasswordCredential = "remote-database-password";
  virustotalKeyCredential = "virustotal-api-key";

  remote = cfg.settings.database.remote;
  # Where the history lives; the service may write there and nowhere else on disk.
  stateDir = dirOf cfg.settings.database.path;

  # TOML has no null: options left null mean "absent, the daemon's default applies".
  withoutNulls = lib.filterAttrsRecursive (_: v: v != null) cfg.settings;

  renderedSettings = lib.recursiveUpdate withoutNulls (
    lib.optionalAttrs (cfg.remoteDatabase.passwordFile != null) {
      database.remote.password_file = "${credentialsDir}/${remotePasswordCredential}";
    }
    // lib.optionalAttrs (cfg.virustotal.apiKeyFile != null) {
      virustotal.api_key_file = "${credentialsDir}/${virustotalKeyCredential}";
    }
  );

  renderedConfig = settingsFormat.generate "picosnitch.toml" renderedSettings;

  # The same binary that will run the daemon judges the file; on failure the numbered
  # file is printed next to check-config's `file:line:column: what is wrong`.
  checkedConfig =
    if cfg.checkConfig then
      pkgs.runCommand "picosnitch-config.toml"
        {
          preferLocalBuild = true;
          # The unchecked file, for a look at what settings rendered to.
          passthru.rendered = renderedConfig;
        }
        ''
        if ! ${cfg.package}/bin/picosnitch check-config ${renderedConfig}; then
          echo "services.picosnitch.settings rendered to this file, which picosnitch refuses:" >&2
          cat -n ${renderedConfig} >&2
          exit 1
        fi
        cp ${renderedConfig} $out
      ''
    else
      renderedConfig;

  inStore = path: lib.hasPrefix "${builtins.storeDir}/" path;

  # A path written as a string is used as is; a Nix path value (./secret) would be
  # copied into the world-readable store, so secret options accept strings only.
  secretFileType = types.nullOr (types.strMatching "/.+");

  stringList = types.listOf types.str;
in
{
  # nixpkgs ships a module for picosnitch 2.x (Python) under the same option name.
  disabledModules = [ "services/networking/picosnitch.nix" ];

  options.services.picosnitch = {
    enable = lib.mkEnableOption "picosnitch, which records which executable makes every network connection";

    package = mkOption {
      type = types.package;
      defaultText = lib.literalExpression "picosnitch.packages.\${pkgs.system}.default";
      description = ''
        The picosnitch package. The flake's `nixosModules.default` sets it; nixpkgs'
        `pkgs.picosnitch` is the older Python implementation and does not fit this module.
      '';
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Run `picosnitch check-config` on the rendered configuration while building the
        system. Turn off only when the build machine cannot run the package (cross builds).
      '';
    };

    remoteDatabase.passwordFile = mkOption {
      type = secretFileType;
      default = null;
      example = "/run/secrets/picosnitch-db";
      description = ''
        File holding the password for `settings.database.remote`. systemd reads it when
        the service starts (LoadCredential=) and the daemon finds it under
        ${credentialsDir}; it is never copied into the Nix store.
      '';
    };

    virustotal.apiKeyFile = mkOption {
      type = secretFileType;
      default = null;
      example = "/run/secrets/virustotal-api-key";
      description = ''
        File holding a VirusTotal API key, handed to the daemon like
        `remoteDatabase.passwordFile`. Unset: no VirusTotal lookups.
      '';
    };

    settings = mkOption {
      default = { };
      description = ''
        picosnitch's configuration, written to /etc/picosnitch/config.toml. Any key of
        `config.example.toml` may be set; the ones below are typed and documented here.
        Unknown keys are refused by `picosnitch check-config` at build time.
      '';
      example = lib.literalExpression ''
        {
          database.retention_days = 90;
          log.ignore_domains = [ "example.com" ];
          desktop.user = "alice";
        }
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;

        # Defaults equal the daemon's own (config.example.toml), except [data], which
        # hands the history to the service user and the `picosnitch` group.
        options = {
          database = {
            path = mkOption {
              type = types.strMatching "/.+";
              default = "/var/lib/picosnitch/picosnitch.db";
              description = "The SQLite history. Its directory is created for the service user and made writable for the service.";
            };
            retention_days = mkOption {
              type = types.ints.unsigned;
              default = 30;
              description = "Rows older than this many days are pruned at start and hourly; 0 keeps everything.";
            };
            write_limit_seconds = mkOption {
              type = types.ints.between 1 3600;
              default = 10;
              description = "Traffic is summed over this many seconds per row before it is written.";
            };
            remote = mkOption {
              default = null;
              description = ''
                An INSERT-only copy of the history on a PostgreSQL server. Give the
                password with `services.picosnitch.remoteDatabase.passwordFile`.
              '';
              type = types.nullOr (
                types.submodule {
                  freeformType = settingsFormat.type;
                  options = {
                    host = mkOption {
                      type = types.str;
                      default = "";
                      example = "logs.example.internal";
                      description = "Host name or address of the PostgreSQL server.";
                    };
                    port = mkOption {
                      type = types.port;
                      default = 5432;
                      description = "TCP port of the server.";
                    };
                    user = mkOption {
                      type = types.str;
                      default = "picosnitch";
                      description = "Database role to log in as.";
                    };
                    database = mkOption {
                      type = types.str;
                      default = "picosnitch";
                      description = "Database name.";
                    };
                    tls = mkOption {
                      type = types.enum [
                        "verify-full"
                        "disable"
                      ];
                      default = "verify-full";
                      description = ''
                        `verify-full` checks the server certificate (against `ca_file`, or
                        the system's roots) and host name; `disable` only suits loopback or
                        a trusted link.
                      '';
                    };
                  };
                }
              );
            };
          };

          log = {
            ignore_ports = mkOption {
              type = types.listOf types.port;
              default = [ ];
              example = [ 53 123 ];
              description = "Connections on these local or remote ports are not recorded.";
            };
            ignore_domains = mkOption {
              type = stringList;
              default = [ ];
              example = [ "example.com" ];
              description = "Domains not recorded, matched by suffix on label boundaries.";
            };
            ignore_ips = mkOption {
              type = stringList;
              default = [ ];
              example = [ "10.0.0.0/8" "fe80::/10" ];
              description = "Remote addresses or CIDR ranges not recorded.";
            };
            ignore_sha256 = mkOption {
              type = types.listOf (types.strMatching "[0-9a-f]{64}");
              default = [ ];
              description = "Executables not recorded, by sha256 (64 lowercase hex digits).";
            };
          };

          desktop = {
            user = mkOption {
              type = types.str;
              default = "";
              example = "alice";
              description = "Desktop user (name or uid) whose session gets notifications, and as whom executables the service cannot read (FUSE mounts, AppImages) are hashed; empty: nobody. Never root.";
            };
            notifications = mkOption {
              type = types.bool;
              default = true;
              description = "Send desktop notifications when a new or changed executable uses the network, events are lost or a role fails.";
            };
            notification_burst = mkOption {
              type = types.ints.between 1 1000;
              default = 5;
              description = "Notifications of one kind shown at once before the rate limit holds the rest back.";
            };
            notification_interval_seconds = mkOption {
              type = types.ints.between 1 86400;
              default = 10;
              description = "After a burst, one more notification of that kind every this many seconds; those held back are summed up in the next.";
            };
            notification_dedup_seconds = mkOption {
              type = types.ints.unsigned;
              default = 3600;
              description = "The same notification again within this many seconds is dropped.";
            };
            hash_timeout_seconds = mkOption {
              type = types.ints.between 1 3600;
              default = 10;
              description = "Seconds the desktop user's hasher (the user-hasher role, run whenever desktop.user is set) may take for one file the service cannot read (FUSE mounts, AppImages) before the executable is recorded as `!hash-timeout` (a FUSE server that does not answer; counted in `picosnitch status`).";
            };
          };

          data = {
            owner = mkOption {
              type = types.str;
              default = "picosnitch";
              description = "Owner of the database files: the user the daemon's writer runs as.";
            };
            group = mkOption {
              type = types.str;
              default = "picosnitch";
              description = ''
                Group that may read the history, the status file and the live feed: add
                users to it (`users.users.<name>.extraGroups`) to let them run
                `picosnitch tui` and `picosnitch query`.
              '';
            };
          };
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !(builtins.elem cfg.settings.desktop.user [ "root" "0" ]);
        message = "services.picosnitch.settings.desktop.user: notifications are never sent as root; name the desktop user who should see them.";
      }
      {
        assertion = remote == null || remote.host != "";
        message = "services.picosnitch.settings.database.remote: set host to the PostgreSQL server's name or address, or remove the remote database.";
      }
      {
        assertion = cfg.remoteDatabase.passwordFile == null || remote != null;
        message = "services.picosnitch.remoteDatabase.passwordFile is set but settings.database.remote is not: configure the remote database or drop the password file.";
      }
      {
        assertion = cfg.remoteDatabase.passwordFile == null || !(inStore cfg.remoteDatabase.passwordFile);
        message = "services.picosnitch.remoteDatabase.passwordFile points into the Nix store, which every user can read; keep the password outside the store (e.g. /run/secrets).";
      }
      {
        assertion = remote == null || !(remote ? password_file) || cfg.remoteDatabase.passwordFile == null;
        message = "services.picosnitch: set the remote database password either with remoteDatabase.passwordFile or with settings.database.remote.password_file, not both.";
      }
      {
        assertion = remote == null || !(inStore (remote.password_file or ""));
        message = "services.picosnitch.settings.database.remote.password_file points into the Nix store, which every user can read; use services.picosnitch.remoteDatabase.passwordFile with a file outside the store.";
      }
      {
        assertion = (cfg.settings.data.runtime_dir or "/run/picosnitch") == "/run/picosnitch";
        message = "services.picosnitch.settings.data.runtime_dir: the module provides /run/picosnitch (RuntimeDirectory=); other locations are not supported.";
      }
      {
        assertion = stateDir != "/" && !(inStore stateDir);
        message = "services.picosnitch.settings.database.path: put the database in a directory of its own (default /var/lib/picosnitch).";
      }
      {
        assertion = (cfg.settings.virustotal.api_key or "") == "";
        message = "services.picosnitch.settings.virustotal.api_key would put the key into the world-readable Nix store; use services.picosnitch.virustotal.apiKeyFile.";
      }
      {
        assertion = cfg.virustotal.apiKeyFile == null || !(inStore cfg.virustotal.apiKeyFile);
        message = "services.picosnitch.virustotal.apiKeyFile points into the Nix store, which every user can read; keep the key outside the store.";
      }
    ];

    users.users.picosnitch = {
      isSystemUser = true;
      group = "picosnitch";
      description = "picosnitch daemon roles";
    };
    users.groups.picosnitch = { };

    # The history's directory belongs to the service user, so the writer can work there
    # after dropping root, and group members may enter it to read the database (whose
    # files the daemon gives [data] owner, group and mode). Not StateDirectory=: for a
    # service running as root, systemd chowns that back to root:root on every start.
    systemd.tmpfiles.rules = [ "d ${stateDir} 0750 picosnitch picosnitch - -" ];

    # The CLI (status, query, tui, top) reads the same file at its default path.
    environment.etc."picosnitch/config.toml".source = checkedConfig;
    environment.systemPackages = [ cfg.package ];

    systemd.services.picosnitch = {
      description = "picosnitch network monitor";
      wantedBy = [ "multi-user.target" ];
      # Attached before the network comes up, so the first connections of the boot
      # are recorded too (the remote writer spools until the network is there).
      wants = [ "network-pre.target" ];
      before = [ "network-pre.target" ];

      serviceConfig = {
        # READY=1 comes from the supervisor (the main process) once the BPF programs
        # are attached; NotifyAccess=main keeps the roles from faking it.
        Type = "notify";
        NotifyAccess = "main";
        # The config's store path is part of the unit, so a settings change restarts
        # the daemon on `nixos-rebuild switch`.
        ExecStart = "${cfg.package}/bin/picosnitch daemon --config ${checkedConfig}";
        Restart = "on-failure";
        RestartSec = 5;
        TimeoutStartSec = 120;
        SyslogIdentifier = "picosnitch";

        # The history's directory (made by tmpfiles above) is the one place on disk the
        # service writes. /run/picosnitch (status, live feed) is made by systemd at each
        # start; the daemon hands it to [data] group.
        ReadWritePaths = [ stateDir ];
        RuntimeDirectory = "picosnitch";
        RuntimeDirectoryMode = "0750";
        UMask = "0027";

        LoadCredential =
          lib.optional (cfg.remoteDatabase.passwordFile != null)
            "${remotePasswordCredential}:${cfg.remoteDatabase.passwordFile}"
          ++ lib.optional (cfg.virustotal.apiKeyFile != null)
            "${virustotalKeyCredential}:${cfg.virustotal.apiKeyFile}";

        # Runs as root: the supervisor attaches BPF programs and then starts each role
        # as its own process, dropping it to the `picosnitch` user (or the desktop user
        # for notifications) with only the capabilities that role needs. The sandbox
        # in the daemon is the first line; everything below is the second.
        CapabilityBoundingSet = [
          "CAP_BPF" # load BPF programs and create maps (kernel >= 5.8)
          "CAP_PERFMON" # attach tracing programs (tracepoints, kprobes, fentry), read kernel memory from BPF
          "CAP_SYS_ADMIN" # fanotify_init, and BPF on kernels without CAP_BPF (< 5.8)
          "CAP_NET_ADMIN" # attach cgroup socket/skb programs
          "CAP_SETUID" # drop each role to its user
          "CAP_SETGID" # ... and to its groups
          "CAP_SETPCAP" # drop each role's bounding set (PR_CAPBSET_DROP) before it starts work
          "CAP_DAC_READ_SEARCH" # open and hash binaries the service user could not read
          "CAP_SYS_PTRACE" # /proc/PID/exe of other users' processes (ptrace access mode check)
          "CAP_SYS_RESOURCE" # raise RLIMIT_NOFILE ([monitoring] rlimit_nofile) and RLIMIT_MEMLOCK on kernels < 5.11
          "CAP_CHOWN" # hand the database and runtime files to [data] owner/group
          "CAP_FOWNER" # set their modes ([data] mode) whoever created them
          "CAP_KILL" # stop and restart roles that run as the service user
        ];
        NoNewPrivileges = true; # the supervisor changes identity itself; nothing setuid is executed

        ProtectSystem = "strict";
        # read-only, not hidden: binaries under /home are opened by path and hashed when
        # /proc/PID/exe is already gone (short-lived processes), and the desktop session's
        # D-Bus socket under /run/user is used for notifications.
        ProtectHome = "read-only";
        # The real /tmp, read-only (ProtectSystem = "strict"; Landlock confines each role
        # further): programs run from it, AppImages above all (their FUSE mount is
        # /tmp/.mount_*), are opened there to be hashed. A private /tmp would hide them.
        PrivateTmp = false;
        PrivateDevices = true;
        DevicePolicy = "closed";
        PrivateMounts = true;
        PrivateIPC = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        # /sys stays readable (BTF at /sys/kernel/btf/vmlinux, perf event types).
        ProtectKernelTunables = true;
        # Read-only cgroupfs is enough to open the root cgroup for BPF attachment.
        ProtectControlGroups = true;
        # ProtectProc and ProcSubset stay at their defaults: every /proc/PID is read.
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        # AF_UNIX: sd_notify, journald, the live feed; AF_INET/6: remote database,
        # VirusTotal; AF_NETLINK: socket and address lookups.
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          # bpf: load and attach; perf_event_open: tracepoint/kprobe attachment;
          # fanotify_*: executable change notifications; landlock_*, seccomp: the
          # daemon installs its own per-role sandbox.
          "bpf perf_event_open fanotify_init fanotify_mark"
          "landlock_create_ruleset landlock_add_rule landlock_restrict_self seccomp"
        ];
        # A call outside the list fails with EPERM (logged by the daemon) instead of
        # killing it, so a missing entry shows up as an error message in the journal.
        SystemCallErrorNumber = "EPERM";
      };
    };
  };
}
