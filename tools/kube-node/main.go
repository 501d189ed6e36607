// Command kube-node is the genuine node side of a Kubernetes cluster for hostready's
// kube-testenv: kube-controller-manager, kube-scheduler and kubelet from k8s.io/kubernetes,
// in one binary chosen by its first argument (like a busybox), so that one Go build links the
// shared Kubernetes packages once instead of three times. scripts/kube-testenv up --node starts
// each of them beside the control plane of tools/kube-testenv.
//
//	kube-node kubelet [kubelet flags]
//	kube-node kube-controller-manager [flags]
//	kube-node kube-scheduler [flags]
//
// Nothing here changes what the components do: each subcommand is the upstream command object,
// run as the upstream main function runs it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kube-node kubelet|kube-controller-manager|kube-scheduler [flags]")
		os.Exit(2)
	}
	var cmd *cobra.Command
	switch os.Args[1] {
	case "kubelet":
		cmd = kubelet.NewKubeletCommand(context.Background())
	case "kube-controller-manager":
		cmd = controllermanager.NewControllerManagerCommand()
	case "kube-scheduler":
		cmd = scheduler.NewSchedulerCommand()
	default:
		fmt.Fprintf(os.Stderr, "kube-node: unknown component %q\n", os.Args[1])
		os.Exit(2)
	}
	cmd.SetArgs(os.Args[2:])
	os.Exit(cli.Run(cmd))
}
