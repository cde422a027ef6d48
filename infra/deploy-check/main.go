// deploy-check runs two real linters that have no binary release in the package registries the
// project reaches, built from the Go module proxy by infra/deploy-tools.ts:
//
//	deploy-check dockerfile <Dockerfile>
//	    BuildKit's own Dockerfile checks (github.com/moby/buildkit, dockerfile2llb.DockerfileLint:
//	    what `docker build --check` runs), with an offline image resolver: base images are not
//	    pulled, so checks that read a base image's config see an empty one.
//	deploy-check compose <docker-compose.yml> [--json] [NAME=VALUE ...]
//	    The compose specification's JSON schema (compose-go's schema/compose-spec.json), then
//	    compose-go's loader (what `docker compose config` runs: interpolation, references between
//	    services, networks and volumes), with only the NAME=VALUE pairs as the environment.
//	    --json prints the loaded project (`docker compose config --format json`) on stdout.
//
// Exit status: 0 clean, 1 findings (printed), 2 usage or I/O errors.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	digest "github.com/opencontainers/go-digest"
	"go.yaml.in/yaml/v3"
)

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	var err error
	var findings int
	switch os.Args[1] {
	case "dockerfile":
		findings, err = lintDockerfile(os.Args[2])
	case "compose":
		findings, err = checkCompose(os.Args[2], os.Args[3:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy-check: %v\n", err)
		os.Exit(2)
	}
	if findings > 0 {
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: deploy-check dockerfile <Dockerfile> | compose <docker-compose.yml> [--json] [NAME=VALUE ...]")
	os.Exit(2)
}

// offlineResolver answers every base image with an empty config instead of asking a registry.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config := []byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
	return ref, digest.FromBytes(config), config, nil
}

func lintDockerfile(file string) (int, error) {
	dt, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	src := llb.Local("dockerfile")
	def, err := src.Marshal(ctx)
	if err != nil {
		return 0, err
	}
	sourceMap := llb.NewSourceMap(&src, filepath.Base(file), "Dockerfile", dt)
	sourceMap.Definition = def
	opt := dockerfile2llb.ConvertOpt{SourceMap: sourceMap, MetaResolver: offlineResolver{}}
	results, err := dockerfile2llb.DockerfileLint(ctx, dt, opt)
	if err != nil {
		return 0, err
	}
	findings := 0
	for _, w := range results.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		fmt.Printf("%s:%d: %s: %s (%s)\n", file, line, w.RuleName, w.Detail, w.URL)
		findings++
	}
	if results.Error != nil {
		fmt.Printf("%s: error: %s\n", file, results.Error.Message)
		findings++
	}
	if findings == 0 {
		fmt.Printf("%s: BuildKit Dockerfile checks passed\n", file)
	}
	return findings, nil
}

func checkCompose(file string, args []string) (int, error) {
	asJSON := false
	var pairs []string
	for _, arg := range args {
		if arg == "--json" {
			asJSON = true
		} else {
			pairs = append(pairs, arg)
		}
	}
	report := os.Stdout
	if asJSON {
		report = os.Stderr
	}
	dt, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	var model map[string]any
	if err := yaml.Unmarshal(dt, &model); err != nil {
		fmt.Fprintf(report, "%s: not YAML: %v\n", file, err)
		return 1, nil
	}
	// The raw file against the specification's schema, before anything is interpolated or defaulted.
	if err := schema.Validate(toJSONTypes(model).(map[string]any)); err != nil {
		fmt.Fprintf(report, "%s: compose-spec.json: %v\n", file, err)
		return 1, nil
	}
	env := map[string]string{}
	for _, pair := range pairs {
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return 0, fmt.Errorf("%q is not NAME=VALUE", pair)
		}
		env[name] = value
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return 0, err
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs, Content: dt}},
		Environment: env,
	}
	project, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("polity", false)
	})
	if err != nil {
		fmt.Fprintf(report, "%s: compose-go loader: %v\n", file, err)
		return 1, nil
	}
	if asJSON {
		out, err := project.MarshalJSON()
		if err != nil {
			return 0, err
		}
		fmt.Println(string(out))
	}
	fmt.Fprintf(report, "%s: compose specification and loader checks passed (project %s, %d services)\n", file, project.Name, len(project.Services))
	return 0, nil
}

// toJSONTypes turns YAML's decoded values into JSON's (map[string]any throughout), as the schema
// validator expects.
func toJSONTypes(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, item := range t {
			t[k] = toJSONTypes(item)
		}
		return t
	case map[any]any:
		out := map[string]any{}
		for k, item := range t {
			out[fmt.Sprint(k)] = toJSONTypes(item)
		}
		return out
	case []any:
		for i, item := range t {
			t[i] = toJSONTypes(item)
		}
		return t
	default:
		// Round-trip scalars the validator may not know (e.g. YAML timestamps) through JSON.
		if _, err := json.Marshal(t); err != nil {
			return fmt.Sprint(t)
		}
		return t
	}
}
